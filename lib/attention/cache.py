"""A persistent, content-addressed cache of attention scores, shared by training and sampling.

One file per (provider, model, token sequence): ``<dir>/<sha[:2]>/<sha>.npy`` where ``sha`` is the
sha256 of the three. A file holds exactly the validated score matrix (``np.save``, read back with
``allow_pickle=False``): no URL, no header, nothing secret. Files are written atomically, so
concurrent runs and an interrupted run never leave a half-written entry; two runs writing the
same entry write the same bytes.
"""
from __future__ import annotations

import hashlib
import io
import json
from pathlib import Path

import numpy as np

from lib.core.io import atomic_write_bytes


def cache_key(provider: str, model: str, token_ids: list[int]) -> str:
    blob = json.dumps([provider, model, [int(t) for t in token_ids]], separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()


class ScoreCache:
    def __init__(self, directory: str | Path):
        self.dir = Path(directory)
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        return self.dir / key[:2] / f"{key}.npy"

    def get(self, provider: str, model: str, token_ids: list[int]) -> np.ndarray | None:
        path = self._path(cache_key(provider, model, token_ids))
        try:
            scores = np.load(path, allow_pickle=False)
        except (FileNotFoundError, ValueError, OSError):  # absent, or damaged: recompute and overwrite
            scores = None
        n = len(token_ids)
        if scores is None or scores.shape != (n, n):
            self.misses += 1
            return None
        self.hits += 1
        return scores

    def put(self, provider: str, model: str, token_ids: list[int], scores: np.ndarray) -> None:
        buf = io.BytesIO()
        np.save(buf, np.ascontiguousarray(scores, dtype=np.float32), allow_pickle=False)
        atomic_write_bytes(self._path(cache_key(provider, model, token_ids)), buf.getvalue())

    def stats(self) -> dict[str, float]:
        total = self.hits + self.misses
        return {"attention_cache_hits": self.hits, "attention_cache_misses": self.misses,
                "attention_cache_hit_rate": round(self.hits / total, 4) if total else 0.0}
