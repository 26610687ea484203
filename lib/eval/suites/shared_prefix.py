"""Log-likelihoods of several continuations of one context, with the context run once.

A question and its options become one packed row: the context, then each option's tokens but its
last (a last token is only ever a target). An attention mask lets an option's tokens see the
context and the earlier tokens of the same option, never another option, and each option's
positions restart right after the context, so every option is scored exactly as in a row of its
own (the harness's request ``context + option``), up to float rounding (~1e-6): the context's
tokens are computed once instead of once per option. Rows are right-padded; a pad sees only
itself (SDPA would return NaN for a row that sees nothing).

Used when the packed row fits the model's window and no option would be left-truncated; the
caller scores the other groups with the plain padded batch (``lib/eval/lambada.py``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lib.core.runtime import autocast


@dataclass(frozen=True)
class Packed:
    tokens: list[int]     # model input: context + each option without its last token
    segment: list[int]    # 0: context; j + 1: option j
    position: list[int]
    rows: list[int]       # per scored token: the input index whose logits predict it
    targets: list[int]
    owner: list[int]      # per scored token: the index of its continuation in the caller's list


def pack(context: list[int], continuations: list[list[int]], first: int, max_len: int) -> Packed | None:
    """One group packed, or None when it does not fit ``max_len`` untruncated."""
    c = len(context)
    if c == 0 or c + max(len(x) for x in continuations) > max_len + 1:
        return None
    tokens, segment, position = list(context), [0] * c, list(range(c))
    rows, targets, owner = [], [], []
    for j, cont in enumerate(continuations):
        start = len(tokens)
        rows += [c - 1] + list(range(start, start + len(cont) - 1))
        targets += cont
        owner += [first + j] * len(cont)
        tokens += cont[:-1]
        segment += [j + 1] * (len(cont) - 1)
        position += range(c, c + len(cont) - 1)
    if len(tokens) > max_len:
        return None
    return Packed(tokens, segment, position, rows, targets, owner)


@torch.no_grad()
def score_packed(model: torch.nn.Module, packs: list[Packed], n_items: int, device: torch.device,
                 logliks: np.ndarray, greedy: np.ndarray) -> None:
    """One forward for ``packs`` (a batch); fills ``logliks`` and ``greedy`` of their continuations."""
    B, W = len(packs), max(len(p.tokens) for p in packs)
    tokens = torch.zeros(B, W, dtype=torch.long)
    segment = torch.full((B, W), -1, dtype=torch.long)
    position = torch.zeros(B, W, dtype=torch.long)
    for b, p in enumerate(packs):
        n = len(p.tokens)
        tokens[b, :n], segment[b, :n], position[b, :n] = (torch.tensor(v) for v in (p.tokens, p.segment, p.position))
    causal = torch.ones(W, W, dtype=torch.bool).tril()
    key, query = segment[:, None, :], segment[:, :, None]
    mask = causal & (key >= 0) & ((key == 0) | (key == query)) | torch.eye(W, dtype=torch.bool)
    with autocast(device):
        logits, _ = model(tokens.to(device), positions=position.to(device), attn_mask=mask[:, None].to(device))
    batch = torch.tensor([b for b, p in enumerate(packs) for _ in p.rows], device=device)
    rows = torch.tensor([r for p in packs for r in p.rows], device=device)
    wanted = torch.tensor([t for p in packs for t in p.targets], device=device)
    owner = torch.tensor([o for p in packs for o in p.owner], device=device)
    logprobs = F.log_softmax(logits[batch, rows].float(), dim=-1)
    token_ll = logprobs.gather(1, wanted[:, None]).squeeze(1).double()
    miss = (logprobs.argmax(-1) != wanted).double()
    ll = torch.zeros(n_items, dtype=torch.float64, device=device).index_add_(0, owner, token_ll)
    misses = torch.zeros(n_items, dtype=torch.float64, device=device).index_add_(0, owner, miss)
    hit = torch.zeros(n_items, dtype=torch.bool, device=device).index_fill_(0, owner.unique(), True)
    logliks[hit.cpu().numpy()] = ll[hit].cpu().numpy()
    greedy[hit.cpu().numpy()] = (misses[hit] == 0).cpu().numpy()
