"""Evaluation: eval params, validation loss and bits per byte over the complete val split, and the
unigram baseline. LAMBADA, computed as lm-evaluation-harness does, lives in ``lib/eval/lambada.py``."""
from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from typing import Iterator

import numpy as np
import torch
import torch.nn.functional as F
from lib.core.progress import progress as progress_bar

from lib.core.errors import UserError
from lib.core.params import check
from lib.core.runtime import autocast
from lib.shards import Shard


@dataclass
class EvalParams:
    lambada_files: list[str] = field(default_factory=lambda: ["data/sample/eval/lambada_hpc.jsonl"])
    prepend_bos: bool = True
    batch_size: int = 16
    val_batches: int | None = None  # None: the complete val split (exact bits per byte)
    prompts: str = "data/sample/eval/prompts.txt"
    max_new_tokens: int = 48
    device: str = "cpu"
    threads: int = 2

    def __post_init__(self):
        check(self.batch_size >= 1, "batch_size", "must be >= 1")
        check(self.val_batches is None or self.val_batches >= 1, "val_batches", "must be >= 1 or null (all)")
        check(len(self.lambada_files) >= 1, "lambada_files", "list at least one LAMBADA jsonl file")


def unigram_entropy(tokens: np.ndarray) -> float:
    """Entropy (nats/token) of the empirical token distribution: the loss of the best model that
    ignores context, measured on the very tokens it is scored on (a strict baseline)."""
    counts = np.bincount(np.asarray(tokens, dtype=np.int64))
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def bits_per_byte(loss_nats_per_token: float, tokens: int, text_bytes: int) -> float:
    """Tokenizer-independent loss: total nats over the split's tokens, in bits, per UTF-8 byte."""
    return loss_nats_per_token * tokens / (text_bytes * math.log(2))


def predicted_tokens(shards: list[Shard]) -> int:
    """Tokens of a split that have a prediction: all but the first of each shard (a BOS)."""
    return sum(max(0, len(s.tokens) - 1) for s in shards)


def _windows(shards: list[Shard], seq_len: int) -> Iterator[np.ndarray]:
    """Non-overlapping windows of up to ``seq_len + 1`` tokens that together predict every token of
    every shard but its first; the last window of a shard may be shorter."""
    for shard in shards:
        n = len(shard.tokens)
        for start in range(0, n - 1, seq_len):
            yield np.asarray(shard.tokens[start:start + seq_len + 1], dtype=np.int64)


def _batches(shards: list[Shard], seq_len: int, batch_size: int) -> Iterator[list[np.ndarray]]:
    """Windows batched by equal length, so no padding is needed. Full windows stream in order;
    only each shard's short last window is held back (one per shard), so memory stays flat."""
    full, short = [], {}
    for w in _windows(shards, seq_len):
        if len(w) == seq_len + 1:
            full.append(w)
            if len(full) == batch_size:
                yield full
                full = []
        else:
            short.setdefault(len(w), []).append(w)
    if full:
        yield full
    for _, rows in sorted(short.items(), reverse=True):
        for i in range(0, len(rows), batch_size):
            yield rows[i:i + batch_size]


@torch.no_grad()
def val_nll(model: torch.nn.Module, shards: list[Shard], device: torch.device | str = "cpu",
            batch_size: int = 16, max_batches: int | None = None, progress: bool = True,
            desc: str = "val") -> tuple[float, int]:
    """(summed NLL in nats, number of predicted tokens) over the val split in windows of the
    model's ``max_seq_len``; ``max_batches`` stops early (None: the whole split). Windows of
    equal length are batched together so no padding is needed."""
    device = torch.device(device)
    model.eval()
    batches = itertools.islice(_batches(shards, model.cfg.max_seq_len, batch_size), max_batches)
    total, count = 0.0, 0
    for rows in progress_bar(batches, enabled=progress, desc=desc, unit="batch", leave=False):
        data = torch.from_numpy(np.stack(rows)).to(device)
        with autocast(device):
            logits, _ = model(data[:, :-1])
        total += float(F.cross_entropy(logits.float().flatten(0, 1), data[:, 1:].flatten(), reduction="sum"))
        count += data[:, 1:].numel()
    if count == 0:
        raise UserError("validation split is empty: no token to predict; add val documents")
    return total, count


def val_metrics(nats: float, tokens: int, split_tokens: int, text_bytes: int) -> dict:
    """Loss, perplexity and bits per byte. Bits per byte = total nats / (ln 2 * UTF-8 bytes of the
    split's documents); when only ``tokens`` of the ``split_tokens`` predicted tokens were scored
    (``val_batches`` set), the mean loss stands in for the unscored ones."""
    loss = nats / tokens
    return {
        "val_loss": loss,
        "val_perplexity": math.exp(loss),
        "val_bpb": bits_per_byte(loss, split_tokens, text_bytes),
        "val_tokens": tokens,
        "val_coverage": tokens / split_tokens,
    }
