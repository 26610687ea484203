"""Validation batches: fixed, non-overlapping windows over the val shards, the same on every call
(pretrain's periodic val loss, and eval's exact bits per byte with ``tails``).

A capped pass (``max_batches``) spreads its windows over the whole split at a fixed stride
rather than taking the first ones: the first few windows are one or two documents, whose loss
can sit far from the split's (at 6 x 384 the first 8 batches read 5.33 where the split read 4.97).
"""
from __future__ import annotations

import itertools
from typing import Iterator

import numpy as np
import torch

from lib.data.batch import Batch
from lib.data.shards import Shard


def val_windows(shards: list[Shard], seq_len: int, batch_size: int, max_batches: int | None = None,
                rank: int = 0, world_size: int = 1, pin_memory: bool = False, tails: bool = False) -> Iterator[Batch]:
    """Non-overlapping windows of ``seq_len + 1`` tokens covering every shard once, in order, batched.

    With ``max_batches`` the pass takes ``max_batches * batch_size * world_size`` of the windows,
    evenly spaced over the split (window ``floor(i * n / k)`` of ``n``, in order), so a short
    validation samples every part of it; when that covers the split it is the whole split.

    ``tails`` adds each shard's shorter last window (batched by equal length after the full
    ones, so no padding is needed), so that every token but a shard's first is predicted exactly
    once: what eval's exact bits per byte needs. Under DDP rank ``r`` takes windows
    ``r::world_size``; the last ``n % world_size`` are left out so every rank runs the same number
    of batches (collectives would otherwise hang).
    """
    if tails and world_size != 1:
        raise ValueError("tails=True is for one process: a rank's share would need padding")
    pin = pin_memory and torch.cuda.is_available()
    take = None if max_batches is None else max_batches * batch_size * world_size
    batches = itertools.chain(_full_batches(shards, seq_len, batch_size, rank, world_size, take),
                              _tail_batches(shards, seq_len, batch_size) if tails else ())
    for rows in itertools.islice(batches, max_batches):
        yield Batch.from_rows(rows, pin)


def _full_batches(shards: list[Shard], seq_len: int, batch_size: int, rank: int, world_size: int,
                  take: int | None = None):
    counts = np.array([max(0, (len(shard.tokens) - 1) // seq_len) for shard in shards], dtype=np.int64)
    picks = spread_picks(int(counts.sum()), take)
    picks = picks[:len(picks) - len(picks) % world_size][rank::world_size]
    ends = np.cumsum(counts)  # window j lies in the first shard whose end exceeds j
    shard_of = np.searchsorted(ends, picks, side="right")
    begins = (picks - (ends[shard_of] - counts[shard_of])) * seq_len
    for i in range(0, len(picks), batch_size):
        where = list(zip(shard_of[i:i + batch_size].tolist(), begins[i:i + batch_size].tolist()))
        rows = np.empty((len(where), seq_len + 1), dtype=np.int64)
        for k, (s, b) in enumerate(where):
            rows[k] = shards[s].tokens[b:b + seq_len + 1]
        yield rows


def spread_picks(n: int, take: int | None) -> np.ndarray:
    """Indices of ``take`` of ``n`` windows at a fixed (fractional) stride ``n / take``, starting at
    0, ascending and distinct; all ``n`` when ``take`` is None or not smaller."""
    if take is None or take >= n:
        return np.arange(n, dtype=np.int64)
    return np.arange(take, dtype=np.int64) * n // take


def _tail_batches(shards: list[Shard], seq_len: int, batch_size: int):
    """Each shard's last window when shorter than ``seq_len + 1`` (one per shard, so memory stays
    flat), longest first, batched by equal length."""
    by_length: dict[int, list[np.ndarray]] = {}
    for shard in shards:
        n = len(shard.tokens)
        start = max(0, (n - 1) // seq_len) * seq_len
        if n - start >= 2:
            by_length.setdefault(n - start, []).append(np.asarray(shard.tokens[start:], dtype=np.int64))
    for _, rows in sorted(by_length.items(), reverse=True):
        for i in range(0, len(rows), batch_size):
            yield np.stack(rows[i:i + batch_size])
