"""Batches of (input, target) token windows read zero-copy from packed shards.

Training windows are random but reproducible: batch ``i`` is drawn from a generator seeded with
``(seed, i)``, so the loader's whole state is the index of the next batch -- which is what a
resumed run restores. Validation is one fixed, complete, non-overlapping pass.
"""
from __future__ import annotations

from typing import Iterator

import numpy as np
import torch

from lib.errors import UserError
from lib.shards import Shard


class TrainWindows:
    """Seeded random windows of ``seq_len + 1`` tokens, uniform over all shards' positions."""

    def __init__(self, shards: list[Shard], seq_len: int, batch_size: int, seed: int):
        self.shards, self.seq_len, self.batch_size, self.seed = shards, seq_len, batch_size, seed
        starts = np.array([max(0, len(s.tokens) - seq_len) for s in shards], dtype=np.int64)
        if starts.sum() == 0:
            longest = max(len(s.tokens) for s in shards)
            raise UserError(f"training shards hold at most {longest} tokens per shard, fewer than "
                            f"seq_len + 1 = {seq_len + 1}; lower seq_len or add documents")
        self._cum = np.cumsum(starts)
        self.next_index = 0

    def batch(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, index])
        picks = rng.integers(0, self._cum[-1], size=self.batch_size)
        shard_ids = np.searchsorted(self._cum, picks, side="right")
        begins = picks - np.concatenate([[0], self._cum[:-1]])[shard_ids]
        rows = np.stack([self.shards[s].tokens[b:b + self.seq_len + 1] for s, b in zip(shard_ids, begins)])
        return _to_tensors(rows)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        while True:
            batch = self.batch(self.next_index)
            self.next_index += 1
            yield batch

    def state_dict(self) -> dict:
        return {"next_index": self.next_index}

    def load_state_dict(self, state: dict) -> None:
        self.next_index = int(state["next_index"])


def val_windows(shards: list[Shard], seq_len: int, batch_size: int,
                max_batches: int | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Non-overlapping windows covering every shard once, in order, batched."""
    rows, produced = [], 0
    for shard in shards:
        n = (len(shard.tokens) - 1) // seq_len
        for w in range(n):
            rows.append(shard.tokens[w * seq_len:w * seq_len + seq_len + 1])
            if len(rows) == batch_size:
                yield _to_tensors(np.stack(rows))
                rows, produced = [], produced + 1
                if max_batches is not None and produced >= max_batches:
                    return
    if rows:
        yield _to_tensors(np.stack(rows))


def _to_tensors(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    data = torch.from_numpy(rows.astype(np.int64))
    return data[:, :-1], data[:, 1:]
