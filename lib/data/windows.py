"""Training batches: seeded random windows of (input, target) tokens read zero-copy from packed shards.

Training windows are random but reproducible: batch ``i`` is drawn from a generator seeded with
``(seed, i)``, so the loader's whole state is the index of the next batch -- which is what a
resumed run restores, and why any number of loader workers gives the same batches. Under DDP
the generator draws one global batch of ``batch_size * world_size`` windows and rank ``r`` keeps
rows ``r::world_size``: ranks see disjoint rows, and together exactly what one process with the
global batch would see. Validation windows are ``lib.data.val_windows``; building batches ahead
of the loop is ``lib.data.prefetch``.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from lib.core.errors import UserError
from lib.data.batch import Batch
from lib.data.shards import Shard, open_shard

# Pages of a memmap that a long run has touched count as the process's memory until unmapped;
# mapping the files afresh now and then keeps resident memory flat (cheap: no data is copied).
REMAP_EVERY = 1024


class TrainWindows:
    """Seeded random windows of ``seq_len + 1`` tokens, uniform over all allowed start positions.

    ``cross_documents=False`` keeps every window inside one document (documents shorter than
    ``seq_len + 1`` tokens are then never drawn). ``pin_memory`` returns page-locked tensors so
    ``.to("cuda", non_blocking=True)`` overlaps the copy with compute (only when CUDA is present).
    """

    def __init__(self, shards: list[Shard], seq_len: int, batch_size: int, seed: int,
                 rank: int = 0, world_size: int = 1, cross_documents: bool = True, pin_memory: bool = False):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in [0, world_size={world_size})")
        if seq_len < 1 or batch_size < 1:
            raise ValueError(f"seq_len ({seq_len}) and batch_size ({batch_size}) must be >= 1")
        self.shards, self.seq_len, self.batch_size, self.seed = shards, seq_len, batch_size, seed
        self.rank, self.world_size, self.cross_documents = rank, world_size, cross_documents
        self.pin_memory = pin_memory and torch.cuda.is_available()
        self._span_shard, self._span_begin, self._cum = _spans(shards, seq_len, cross_documents)
        if len(self._cum) == 0 or self._cum[-1] == 0:
            what = "per shard" if cross_documents else "per document"
            longest = max(_lengths(shards, cross_documents), default=0)
            raise UserError(f"training shards hold at most {longest} tokens {what}, fewer than "
                            f"seq_len + 1 = {seq_len + 1}; lower seq_len or add documents")
        self._maps = self._map()
        self._calls = 0

    @property
    def global_batch(self) -> int:
        return self.batch_size * self.world_size

    def batch(self, index: int) -> Batch:
        return Batch.from_rows(self.rows(index), self.pin_memory)

    def rows(self, index: int) -> np.ndarray:
        """Batch ``index`` as one int64 array of ``batch_size`` windows of ``seq_len + 1`` tokens."""
        rng = np.random.default_rng([self.seed, index])
        picks = rng.integers(0, self._cum[-1], size=self.global_batch)[self.rank::self.world_size]
        span = np.searchsorted(self._cum, picks, side="right")
        prev = np.where(span > 0, self._cum[span - 1], 0)
        begins = self._span_begin[span] + (picks - prev)
        rows = np.empty((self.batch_size, self.seq_len + 1), dtype=np.int64)
        maps = self._tokens()
        for k, (s, b) in enumerate(zip(self._span_shard[span].tolist(), begins.tolist())):
            rows[k] = maps[s][b:b + self.seq_len + 1]
        return rows

    def _tokens(self) -> list[np.ndarray]:
        self._calls += 1
        if self._calls % REMAP_EVERY == 0:
            self._maps = self._map()
        return self._maps

    def __getstate__(self) -> dict:
        # sent to a spawned loader worker: without the mapped views, which would pickle every token
        return {k: v for k, v in self.__dict__.items() if k != "_maps"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._maps = self._map()

    def _map(self) -> list[np.ndarray]:
        # Own mappings (not the caller's Shard memmaps, whose touched pages would stay resident),
        # as plain ndarray views: slicing an np.memmap costs ~3 us more per window.
        return [np.asarray(open_shard(s.path).tokens) for s in self.shards]


def _spans(shards: list[Shard], seq_len: int, cross_documents: bool):
    """Runs of allowed window starts: (shard index, first start, cumulative count) per run --
    one run per shard, or one per document when windows must stay inside documents."""
    span_shard, span_begin, counts = [], [], []
    for i, shard in enumerate(shards):
        if cross_documents:
            begin = np.zeros(1, dtype=np.int64)
            n = np.array([max(0, len(shard.tokens) - seq_len)], dtype=np.int64)
        else:
            off = np.asarray(shard.offsets, dtype=np.int64)
            begin, n = off[:-1], np.maximum(0, np.diff(off) - seq_len)
            keep = n > 0
            begin, n = begin[keep], n[keep]
        span_shard.append(np.full(len(n), i, dtype=np.int64))
        span_begin.append(begin)
        counts.append(n)
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0, dtype=np.int64)  # noqa: E731
    return cat(span_shard), cat(span_begin), np.cumsum(cat(counts))


def _lengths(shards: list[Shard], per_document: bool) -> Iterator[int]:
    for shard in shards:
        if per_document:
            off = np.asarray(shard.offsets, dtype=np.int64)
            if len(off) > 1:
                yield int(np.diff(off).max())
        else:
            yield len(shard.tokens)
