"""Autoregressive generation over the KV cache: prefill the prompt once, then one token a step."""
from __future__ import annotations

import torch

from lib.model import GPT, KVCache


@torch.no_grad()
def generate(model: GPT, prompt: list[int], max_new_tokens: int, stop_ids: set[int],
             temperature: float = 0.0, top_k: int = 0, seed: int = 0) -> list[int]:
    """New token ids after ``prompt``; greedy when temperature is 0. Stops at a stop id
    (not included) or when the model's context is full."""
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    budget = min(max_new_tokens, model.cfg.max_seq_len - len(prompt))
    prompt = prompt[-model.cfg.max_seq_len:]
    caches = [KVCache() for _ in model.blocks]
    logits, _ = model(torch.tensor([prompt], device=device), caches=caches)
    out: list[int] = []
    for _ in range(max(0, budget)):
        next_id = _pick(logits[0, -1].float().cpu(), temperature, top_k, generator)
        if next_id in stop_ids:
            break
        out.append(next_id)
        logits, _ = model(torch.tensor([[next_id]], device=device), caches=caches,
                          start_pos=len(prompt) + len(out) - 1)
    return out


def _pick(logits: torch.Tensor, temperature: float, top_k: int, generator: torch.Generator) -> int:
    if temperature <= 0:
        return int(logits.argmax())
    logits = logits / temperature
    if top_k > 0:
        kth = torch.topk(logits, min(top_k, logits.numel())).values[-1]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    return int(torch.multinomial(torch.softmax(logits, -1), 1, generator=generator))
