"""Validation batches: fixed, non-overlapping windows over the val shards, the same on every call
(pretrain's periodic val loss, and eval's exact bits per byte with ``tails``)."""
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

    ``tails`` adds each shard's shorter last window (batched by equal length after the full
    ones, so no padding is needed), so that every token but a shard's first is predicted exactly
    once: what eval's exact bits per byte needs. Under DDP rank ``r`` takes windows
    ``r::world_size``; the last ``n % world_size`` are left out so every rank runs the same number
    of batches (collectives would otherwise hang).
    """
    if tails and world_size != 1:
        raise ValueError("tails=True is for one process: a rank's share would need padding")
    pin = pin_memory and torch.cuda.is_available()
    batches = itertools.chain(_full_batches(shards, seq_len, batch_size, rank, world_size),
                              _tail_batches(shards, seq_len, batch_size) if tails else ())
    for rows in itertools.islice(batches, max_batches):
        yield Batch.from_rows(rows, pin)


def _full_batches(shards: list[Shard], seq_len: int, batch_size: int, rank: int, world_size: int):
    counts = [max(0, (len(shard.tokens) - 1) // seq_len) for shard in shards]
    usable = sum(counts) - sum(counts) % world_size
    starts = ((s, w * seq_len) for s, n in enumerate(counts) for w in range(n))
    mine = itertools.islice(starts, rank, usable, world_size)
    while picked := list(itertools.islice(mine, batch_size)):
        rows = np.empty((len(picked), seq_len + 1), dtype=np.int64)
        for k, (s, b) in enumerate(picked):
            rows[k] = shards[s].tokens[b:b + seq_len + 1]
        yield rows


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
