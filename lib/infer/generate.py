"""Autoregressive generation over the KV cache: prefill the prompts once, then one token a step.

One engine serves three front ends: ``generate`` (one prompt, a list of ids), ``stream`` (one
prompt, ids as they are produced) and ``generate_batch`` (many prompts at once). A batch is
left-padded so every row's next token sits in the last column; each row gets its own RoPE
positions (its first real token is position 0) and an attention mask that hides the pad keys,
so a row's tokens are exactly those it would get alone. Generation stops per row at a stop id
(not included), at a stop string (the ids that complete it are included; cut the text with
``cut_at_stop``), after ``max_new_tokens``, or when the row fills the model's context.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch

from lib.model.gpt import GPT, KVCache, padded_causal_mask
from lib.infer.prepare import prepare_for_decode
from lib.infer.sampling import SamplingParams, sample


@torch.no_grad()
def generate(model: GPT, prompt: list[int], max_new_tokens: int, stop_ids: set[int],
             temperature: float = 0.0, top_k: int = 0, seed: int = 0, top_p: float = 1.0,
             repetition_penalty: float = 1.0, stop_strings: Sequence[str] = (), tokenizer=None) -> list[int]:
    """New token ids after ``prompt``; greedy when temperature is 0."""
    sampling = SamplingParams(temperature, top_k, top_p, repetition_penalty)
    return list(stream(model, prompt, max_new_tokens, stop_ids, sampling, seed, stop_strings, tokenizer))


def stream(model: GPT, prompt: list[int], max_new_tokens: int, stop_ids: set[int],
           sampling: SamplingParams | None = None, seed: int = 0, stop_strings: Sequence[str] = (),
           tokenizer=None) -> Iterator[int]:
    """Yield new token ids one at a time as they are produced (for streaming to a terminal)."""
    for _, token in _run(model, [prompt], max_new_tokens, stop_ids, sampling or SamplingParams(), [seed],
                         stop_strings, tokenizer):
        yield token


def generate_batch(model: GPT, prompts: Sequence[list[int]], max_new_tokens: int, stop_ids: set[int],
                   sampling: SamplingParams | None = None, seed: int | Sequence[int] = 0,
                   stop_strings: Sequence[str] = (), tokenizer=None) -> list[list[int]]:
    """New token ids for each prompt, computed together. ``seed`` is one seed for every row or one
    per row; row i equals ``generate`` of prompt i with row i's seed."""
    seeds = [seed] * len(prompts) if isinstance(seed, int) else list(seed)
    if len(seeds) != len(prompts):
        raise ValueError(f"got {len(seeds)} seeds for {len(prompts)} prompts")
    out: list[list[int]] = [[] for _ in prompts]
    for row, token in _run(model, list(prompts), max_new_tokens, stop_ids, sampling or SamplingParams(), seeds,
                           stop_strings, tokenizer):
        out[row].append(token)
    return out


def cut_at_stop(text: str, stop_strings: Sequence[str]) -> str:
    """``text`` up to the first occurrence of any stop string."""
    cut = min((i for i in (text.find(s) for s in stop_strings if s) if i >= 0), default=len(text))
    return text[:cut]


class StreamDecoder:
    """Turns a stream of token ids into text increments that are safe to print.

    Decoding piece by piece is wrong for SentencePiece (the leading-space marker of the first
    piece, and byte-fallback pieces that are each a fraction of one UTF-8 character), so this
    decodes the whole growing list and hands out the new suffix -- holding it back while the
    text ends in an incomplete character, which decodes as U+FFFD until its last byte arrives.
    With ``stop_strings``, the text is cut before the first stop string: the last few characters
    that could still begin one are held back until they are known not to, and ``stopped`` turns
    true once one has appeared.
    """

    def __init__(self, tokenizer, stop_strings: Sequence[str] = ()):
        self.tokenizer = tokenizer
        self.stop_strings = [s for s in stop_strings if s]
        self.hold = max((len(s) for s in self.stop_strings), default=1) - 1
        self.ids: list[int] = []
        self.text = ""      # what has been handed out so far
        self.stopped = False

    def push(self, token_id: int) -> str:
        self.ids.append(int(token_id))
        if self.stopped:
            return ""
        text = self.tokenizer.decode(self.ids)
        if self.stop_strings and cut_at_stop(text, self.stop_strings) != text:
            self.stopped = True
            return self._advance(cut_at_stop(text, self.stop_strings))
        if text.endswith("\ufffd"):
            return ""
        return self._advance(text[:len(text) - self.hold] if self.stop_strings else text)

    def flush(self) -> str:
        """Whatever is still held back (the tail that might have begun a stop string, or a
        character whose bytes never completed)."""
        if self.stopped:
            return ""
        return self._advance(cut_at_stop(self.tokenizer.decode(self.ids), self.stop_strings))

    def _advance(self, text: str) -> str:
        if self.text.startswith(text):  # nothing new (a shorter text: what is printed stays printed)
            return ""
        keep = len(self.text)
        if not text.startswith(self.text):  # the decoding changed behind us: go on from the common prefix
            keep = next(i for i, (a, b) in enumerate(zip(self.text, text)) if a != b)
        new, self.text = text[keep:], text
        return new


@dataclass
class _Rows:
    """The batch being generated: left-padded prompts in one KV cache."""
    lens: torch.Tensor          # (B,) prompt lengths
    width: int                  # the padded prompt width T
    budgets: list[int]          # new tokens each row may still produce, at most
    caches: list[KVCache]
    valid: torch.Tensor | None  # (B, S) real keys so far; None when no row is padded


def _prefill(model: GPT, prompts: list[list[int]], max_new_tokens: int, device) -> tuple[_Rows, torch.Tensor]:
    """Run the prompts through the model once, left-padded to one width; (rows, logits)."""
    max_len, B = model.cfg.max_seq_len, len(prompts)
    lens = torch.tensor([len(p) for p in prompts])
    T = int(lens.max())
    pad = T - lens
    # A token at position p needs logits from position p - 1 < max_len: one more than fits is allowed.
    budgets = [min(max_new_tokens, max_len + 1 - int(n)) for n in lens]
    x = torch.zeros(B, T, dtype=torch.long)
    for i, p in enumerate(prompts):
        x[i, int(pad[i]):] = torch.tensor(p, dtype=torch.long)
    caches = [KVCache(T + max(budgets)) for _ in model.blocks]  # the longest a row can grow: one allocation
    if not bool((pad > 0).any()):
        logits, _ = model(x.to(device), caches=caches)
        return _Rows(lens, T, budgets, caches, None), logits
    cols = torch.arange(T)
    valid = cols[None, :] >= pad[:, None]                       # (B, S): real keys
    positions = (cols[None, :] - pad[:, None]).clamp(min=0)
    logits, _ = model(x.to(device), caches=caches, positions=positions.to(device),
                      attn_mask=padded_causal_mask(valid).to(device))
    return _Rows(lens, T, budgets, caches, valid), logits


def _advance(model: GPT, rows: _Rows, next_ids: torch.Tensor, active: list[bool], step: int, device) -> torch.Tensor:
    """Feed each row's chosen token; the logits for the next one."""
    new = next_ids.view(-1, 1).to(device)
    with _decode_threads(device):
        if rows.valid is None:
            return model(new, caches=rows.caches, start_pos=rows.width + step)[0]
        rows.valid = torch.cat([rows.valid, torch.ones(len(active), 1, dtype=torch.bool)], dim=1)
        pos = rows.lens + step  # each row's position of the token just chosen
        live = pos[torch.tensor(active)]
        pos = pos.clamp(max=model.cfg.max_seq_len - 1)  # finished rows still ride along; keep their index in range
        return model(new, caches=rows.caches, start_pos=int(live.max()), positions=pos[:, None].to(device),
                     attn_mask=rows.valid[:, None, None, :].to(device))[0]


def _seen_tokens(prompts: list[list[int]], sampling: SamplingParams, vocab: int) -> torch.Tensor | None:
    """(B, vocab) tokens each row has seen, for the repetition penalty (None when it is off)."""
    if sampling.repetition_penalty == 1.0:
        return None
    seen = torch.zeros(len(prompts), vocab, dtype=torch.bool)
    for i, p in enumerate(prompts):
        seen[i, p] = True
    return seen


@torch.no_grad()
def _run(model: GPT, prompts: list[list[int]], max_new_tokens: int, stop_ids: set[int],
         sampling: SamplingParams, seeds: list[int], stop_strings: Sequence[str],
         tokenizer) -> Iterator[tuple[int, int]]:
    """Yield (row, token id) as rows produce tokens; the engine behind every front end."""
    if stop_strings and tokenizer is None:
        raise ValueError("stop_strings need the tokenizer to decode the generated text")
    prepare_for_decode(model.eval())  # once per model: later calls find it prepared
    device = next(model.parameters()).device
    B = len(prompts)
    if B == 0:
        return
    prompts = [list(p)[-model.cfg.max_seq_len:] for p in prompts]  # too long a prompt keeps its end
    if any(not p for p in prompts):
        raise ValueError("every prompt needs at least one token (e.g. BOS)")
    rows, logits = _prefill(model, prompts, max_new_tokens, device)
    generators = [torch.Generator(device="cpu").manual_seed(int(s)) for s in seeds]
    seen = _seen_tokens(prompts, sampling, logits.shape[-1])
    max_stop = max((len(s) for s in stop_strings), default=0)
    out: list[list[int]] = [[] for _ in range(B)]
    active = [b > 0 for b in rows.budgets]
    step = 0
    while any(active):
        next_ids = sample(logits[:, -1].float().cpu(), sampling, generators, seen)
        for i in range(B):
            if not active[i]:
                continue
            token = int(next_ids[i])
            if token in stop_ids:
                active[i] = False
                continue
            out[i].append(token)
            yield i, token
            if len(out[i]) >= rows.budgets[i] or (max_stop and _ends_with_stop(tokenizer, out[i], stop_strings, max_stop)):
                active[i] = False
        if not any(active):
            break
        if seen is not None:
            seen[torch.arange(B), next_ids] = True
        logits = _advance(model, rows, next_ids, active, step, device)
        step += 1


@contextlib.contextmanager
def _decode_threads(device: torch.device):
    """One CPU thread for a one-token forward. Its matmuls are too small to split, and each of
    its ~100 ops is a parallel region whose threads wait for one another: at 2 threads on a
    shared machine that wait cost ~10x the CPU time of the work (bench_model's generation
    figures). Prefill, with whole prompts, keeps every thread."""
    if device.type != "cpu" or torch.get_num_threads() == 1:
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _ends_with_stop(tokenizer, ids: list[int], stop_strings: Sequence[str], max_stop: int) -> bool:
    # A stop string of n characters spans at most 4n tokens (a token is at least one byte); the
    # window is longer so that the piece starting the stop string is never the window's first,
    # whose leading space SentencePiece would drop.
    text = tokenizer.decode(ids[-(4 * max_stop + 8):])
    return any(s and s in text for s in stop_strings)
