"""Choosing the next token from logits: greedy, temperature, top-k, top-p, repetition penalty.

Every function works on a (B, V) batch at once. Sampling draws one uniform number per row from
that row's own seeded generator and inverts the row's CDF, so a row's choice depends only on its
logits and its generator -- the property that makes batched generation equal one-at-a-time
generation with the same seed.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from lib.core.params import check


@dataclass
class SamplingParams:
    temperature: float = 0.0         # 0 = greedy (argmax)
    top_k: int = 0                   # 0 = off; else keep the k most likely tokens
    top_p: float = 1.0               # 1 = off; else keep the smallest set with probability >= top_p
    repetition_penalty: float = 1.0  # 1 = off; > 1 discourages tokens already in the context (CTRL)

    def __post_init__(self):
        check(self.temperature >= 0.0, "temperature", "must be >= 0 (0 = greedy)")
        check(self.top_k >= 0, "top_k", "must be >= 0 (0 = off)")
        check(0.0 < self.top_p <= 1.0, "top_p", "must be in (0, 1] (1 = off)")
        check(self.repetition_penalty > 0.0, "repetition_penalty", "must be > 0 (1 = off)")

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's penalty: a seen token's positive logit is divided by ``penalty``, a negative one
    multiplied, so the token always becomes less likely. ``seen`` is a (B, V) bool mask."""
    if penalty == 1.0:
        return logits
    penalized = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalized, logits)


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep exactly the ``k`` largest logits of each row (ties broken by index), -inf elsewhere."""
    if k <= 0 or k >= logits.shape[-1]:
        return logits
    keep = torch.zeros_like(logits, dtype=torch.bool).scatter_(-1, logits.topk(k, dim=-1).indices, True)
    return logits.masked_fill(~keep, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering: keep the smallest set of most likely tokens whose probability sums to
    at least ``p`` (the most likely token is always kept), -inf elsewhere."""
    if p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    probs = sorted_logits.softmax(-1)
    before = probs.cumsum(-1) - probs  # mass of the strictly more likely tokens
    keep_sorted = before < p
    keep_sorted[..., 0] = True
    keep = torch.zeros_like(keep_sorted).scatter_(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))


def next_token_probs(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """The (B, V) distribution that ``sample`` draws from (temperature > 0)."""
    logits = logits.float() / params.temperature
    logits = top_k_filter(logits, params.top_k)
    logits = top_p_filter(logits, params.top_p)
    return logits.softmax(-1)


def sample(logits: torch.Tensor, params: SamplingParams, generators: list[torch.Generator],
           seen: torch.Tensor | None = None) -> torch.Tensor:
    """One token id per row of ``logits`` (B, V) on the CPU; ``generators`` has one per row."""
    logits = logits.float()
    if seen is not None:
        logits = apply_repetition_penalty(logits, seen, params.repetition_penalty)
    if params.greedy:
        return logits.argmax(-1)
    probs = next_token_probs(logits, params)
    cdf = probs.cumsum(-1)
    u = torch.cat([torch.rand(1, generator=g) for g in generators])
    # right=True: the first index whose CDF exceeds u * total, so a zero-probability token (a flat
    # step of the CDF) can never be chosen.
    idx = torch.searchsorted(cdf, (u * cdf[:, -1]).unsqueeze(-1), right=True).squeeze(-1)
    # u * total can round up to total; fall back to the last token that has any probability
    last = logits.shape[-1] - 1 - (probs > 0).flip(-1).int().argmax(-1)
    return torch.minimum(idx, last)
