"""The OpenAI request bodies we accept, checked once into a typed ``GenRequest``, and OpenAI's
error shape. Every mistake in a request is an ``ApiError`` (a 4xx with
``{"error": {"message", "type", "param", "code"}}``), never a 500."""
from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import Any

from lib.core.errors import UserError
from lib.tokenizer.chat import Message, encode_chat, stop_ids, to_messages
from lib.infer.sampling import SamplingParams
from lib.tokenizer import Tokenizer

DEFAULT_MAX_TOKENS = 256
MAX_STOPS = 4  # as OpenAI
UNSUPPORTED = ("logprobs", "top_logprobs", "presence_penalty", "frequency_penalty", "logit_bias", "tools", "best_of")


class ApiError(Exception):
    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 kind: str = "invalid_request_error"):
        super().__init__(message)
        self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


@dataclass
class GenRequest:
    """What the engine needs, plus how to answer."""
    prompt: list[int]
    stop_ids: frozenset[int]
    max_tokens: int
    sampling: SamplingParams
    seed: int
    stop: list[str]
    stream: bool
    include_usage: bool


def parse_json(raw: bytes) -> dict:
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ApiError(400, f"the request body is not valid JSON: {err}") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the request body must be a JSON object")
    return body


def check_model(body: dict, served: str) -> None:
    name = body.get("model", served)
    if name != served:
        raise ApiError(404, f"The model `{name}` does not exist; this server serves `{served}` (GET /v1/models)",
                       "model", "model_not_found")


def chat_request(body: dict, tokenizer: Tokenizer, context: int) -> GenRequest:
    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise ApiError(400, "'messages' must be a non-empty list of {role, content}", "messages")
    messages = [_message(m, i) for i, m in enumerate(raw)]
    try:  # the template's own rules: optional system, then user/assistant alternating from user
        to_messages({"messages": [{"role": m.role, "content": m.content} for m in messages]}, "messages")
    except UserError as err:
        raise ApiError(400, str(err), "messages") from None
    if messages[-1].role != "user":
        raise ApiError(400, "the last message must be the user's (the model answers it)", "messages")
    ids, _ = encode_chat(tokenizer, messages, add_generation_prompt=True)
    return _request(body, ids, frozenset(stop_ids(tokenizer)), context, "messages")


def completion_request(body: dict, tokenizer: Tokenizer, context: int) -> GenRequest:
    prompt = body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1:
        prompt = prompt[0]
    if isinstance(prompt, str):
        ids = [tokenizer.bos_id] + tokenizer.encode(prompt)
    elif isinstance(prompt, list) and prompt and all(isinstance(t, int) and not isinstance(t, bool) for t in prompt):
        if any(not 0 <= t < tokenizer.vocab_size for t in prompt):
            raise ApiError(400, f"token ids must be in [0, {tokenizer.vocab_size})", "prompt")
        ids = list(prompt)
    else:
        raise ApiError(400, "'prompt' must be a string, a list of one string, or a list of token ids", "prompt")
    if body.get("echo"):
        raise ApiError(400, "'echo' is not supported", "echo")
    return _request(body, ids, frozenset({tokenizer.eos_id}), context, "prompt")


def _message(m: Any, i: int) -> Message:
    where = f"messages[{i}]"
    if not isinstance(m, dict):
        raise ApiError(400, f"{where} must be an object with role and content", "messages")
    role, content = m.get("role"), m.get("content")
    if role == "developer":  # OpenAI's newer name for the system role
        role = "system"
    if isinstance(content, list):  # content parts: text only
        if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content):
            raise ApiError(400, f"{where}.content: only text parts are supported", "messages")
        content = "".join(p["text"] for p in content)
    if role not in ("system", "user", "assistant") or not isinstance(content, str):
        raise ApiError(400, f"{where} needs a role of system, user or assistant and a string content", "messages")
    return Message(role, content)


def _request(body: dict, ids: list[int], stops: frozenset[int], context: int, prompt_param: str) -> GenRequest:
    if len(ids) > context:
        raise ApiError(400, f"This model's maximum context length is {context} tokens; the prompt has {len(ids)}",
                       prompt_param, "context_length_exceeded")
    if _get(body, "n", int, 1) != 1:
        raise ApiError(400, "only n=1 is supported", "n")
    for key in UNSUPPORTED:  # asked for but not done would be a silent lie
        if body.get(key):
            raise ApiError(400, f"'{key}' is not supported by this server", key)
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    param = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    if max_tokens is None:
        max_tokens = min(DEFAULT_MAX_TOKENS, context + 1 - len(ids))
    elif not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise ApiError(400, f"'{param}' must be a whole number >= 1, got {max_tokens!r}", param)
    elif max_tokens > context:
        raise ApiError(400, f"'{param}' is {max_tokens}, over this model's context of {context} tokens", param,
                       "context_length_exceeded")
    sampling = _sampling(body)
    seed = _get(body, "seed", int, None)
    if seed is None:
        seed = random.randrange(2**31)  # sampled requests without a seed differ run to run, as OpenAI's
    stop = body.get("stop") or []
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or len(stop) > MAX_STOPS or not all(isinstance(s, str) and s for s in stop):
        raise ApiError(400, f"'stop' must be a string or a list of at most {MAX_STOPS} non-empty strings", "stop")
    stream = _get(body, "stream", bool, False)
    options = body.get("stream_options") or {}
    include_usage = bool(isinstance(options, dict) and options.get("include_usage"))
    return GenRequest(ids, stops, max_tokens, sampling, seed, stop, stream, include_usage)


def _sampling(body: dict) -> SamplingParams:
    temperature = _get(body, "temperature", float, 1.0)
    if not 0.0 <= temperature <= 2.0:
        raise ApiError(400, f"'temperature' must be in [0, 2], got {temperature}", "temperature")
    top_p = _get(body, "top_p", float, 1.0)
    if not 0.0 < top_p <= 1.0:
        raise ApiError(400, f"'top_p' must be in (0, 1], got {top_p}", "top_p")
    top_k = _get(body, "top_k", int, 0)  # not OpenAI's, but vLLM's and llama.cpp's servers take it
    if top_k < 0:
        raise ApiError(400, f"'top_k' must be >= 0 (0 = off), got {top_k}", "top_k")
    return SamplingParams(temperature, top_k, top_p)


def _get(body: dict, key: str, kind: type, default):
    value = body.get(key)
    if value is None:
        return default
    ok = isinstance(value, bool) if kind is bool else \
        isinstance(value, (int, float) if kind is float else kind) and not isinstance(value, bool)
    if not ok:
        raise ApiError(400, f"'{key}' must be a {kind.__name__}, got {value!r}", key)
    return kind(value)
