// The chat page: keeps the conversation, sends it to /v1/chat/completions with stream: true,
// and shows the reply as server-sent events arrive (fetch + ReadableStream). No library, no build.
"use strict";

const $ = (id) => document.getElementById(id);
let messages = [];       // the conversation: {role, content}
let modelName = null;
let controller = null;   // the in-flight request, so Stop and Reset can abort it

async function loadModel() {
  try {
    const r = await fetch("/v1/models");
    const body = await r.json();
    if (!r.ok) throw new Error(body.error ? body.error.message : r.statusText);
    const card = body.data[0];
    modelName = card.id;
    $("model").textContent = `${card.id} · context ${card.max_model_len} tokens`;
    const max = $("max_tokens");  // the server refuses more new tokens than the context holds
    max.max = card.max_model_len;
    if (Number(max.value) > card.max_model_len) max.value = card.max_model_len;
    showSettings();
  } catch (err) {
    $("model").textContent = `no model: ${err.message}`;
  }
}

function settings() {
  return {
    temperature: Number($("temperature").value),
    top_p: Number($("top_p").value),
    max_tokens: Math.max(1, Math.floor(Number($("max_tokens").value))),
  };
}

function showSettings() {
  const s = settings();
  const system = $("system").value.trim() ? " · system message set" : "";
  $("summary").textContent = `temperature ${s.temperature} · top_p ${s.top_p} · max_tokens ${s.max_tokens}${system}`;
}

// Text with ``` fences becomes paragraphs and <pre><code> blocks; built from DOM nodes
// (textContent), so nothing the model writes is ever parsed as HTML.
function render(el, text) {
  el.replaceChildren();
  const parts = text.split("```");
  parts.forEach((part, i) => {
    if (i % 2 === 0) {
      if (part) el.append(document.createTextNode(part));
      return;
    }
    const nl = part.indexOf("\n");
    const lang = nl >= 0 ? part.slice(0, nl).trim() : "";
    const pre = document.createElement("pre");
    if (lang && /^[\w+#.-]+$/.test(lang)) {
      const tag = document.createElement("span");
      tag.className = "lang";
      tag.textContent = lang;
      pre.append(tag);
    }
    const code = document.createElement("code");
    code.textContent = nl >= 0 && /^[\w+#.-]*$/.test(part.slice(0, nl).trim()) ? part.slice(nl + 1) : part;
    pre.append(code);
    el.append(pre);
  });
}

function bubble(role, text) {
  const el = document.createElement("div");
  el.className = `msg ${role}`;
  render(el, text);
  $("log").append(el);
  el.scrollIntoView({ block: "end" });
  return el;
}

// Server-sent events from a fetch body: "data: {...}\n\n" blocks, ending with "data: [DONE]".
async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of block.split("\n")) {
        if (!line.startsWith("data:")) continue;
        const data = line.slice(5).trim();
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

async function ask(text) {
  messages.push({ role: "user", content: text });
  bubble("user", text);
  const out = bubble("assistant", "");
  out.classList.add("streaming");
  const system = $("system").value.trim();
  const body = {
    model: modelName, stream: true, ...settings(),
    messages: (system ? [{ role: "system", content: system }] : []).concat(messages),
  };
  controller = new AbortController();
  setBusy(true);
  let reply = "";
  try {
    const r = await fetch("/v1/chat/completions", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body), signal: controller.signal,
    });
    if (!r.ok) {
      const err = await r.json().catch(() => ({}));
      throw new Error(err.error ? err.error.message : `${r.status} ${r.statusText}`);
    }
    for await (const chunk of events(r)) {
      if (chunk.error) throw new Error(chunk.error.message);
      const choice = chunk.choices && chunk.choices[0];
      if (choice && choice.delta && choice.delta.content) {
        reply += choice.delta.content;
        render(out, reply);
        out.scrollIntoView({ block: "end" });
      }
      if (choice && choice.finish_reason) $("status").textContent = `finished: ${choice.finish_reason}`;
    }
    messages.push({ role: "assistant", content: reply });
  } catch (err) {
    if (err.name === "AbortError") {
      $("status").textContent = "stopped";
      if (reply) messages.push({ role: "assistant", content: reply });
      else messages.pop();
    } else {
      messages.pop();
      out.classList.add("error");
      render(out, `error: ${err.message}`);
    }
  } finally {
    out.classList.remove("streaming");
    out.classList.add("done");
    controller = null;
    setBusy(false);
  }
}

function setBusy(busy) {
  $("send").disabled = busy;
  $("stop").hidden = !busy;
  if (busy) $("status").textContent = "generating…";
}

function reset() {
  if (controller) controller.abort();
  messages = [];
  $("log").replaceChildren();
  $("status").textContent = "new conversation";
}

$("ask").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("input").value.trim();
  if (!text || controller) return;
  $("input").value = "";
  ask(text);
});
$("input").addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    $("ask").requestSubmit();
  }
});
$("stop").addEventListener("click", () => controller && controller.abort());
$("reset").addEventListener("click", reset);
for (const id of ["temperature", "top_p", "max_tokens", "system"]) $(id).addEventListener("input", showSettings);
showSettings();
loadModel();
