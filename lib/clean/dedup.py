"""Exact (normalised-text hash) and near-duplicate (MinHash over word shingles, LSH banding)
deduplication. Signatures are computed in the worker processes; the index lives in the parent,
which sees documents in manifest order, so the first of a duplicate group is the one kept."""
from __future__ import annotations

import hashlib
import re
import zlib

import numpy as np

_MASK = np.uint64(0xFFFFFFFFFFFFFFFF)
_WORD = re.compile(r"\w+", re.UNICODE)


def text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: a good 64-bit mixer, vectorised, wrapping in uint64."""
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def minhash(text: str, shingle_size: int, num_perm: int, seed: int) -> np.ndarray:
    """MinHash signature (uint32 x num_perm) over lowercased word shingles."""
    words = _WORD.findall(text.lower())
    if not words:
        return np.full(num_perm, 0xFFFFFFFF, np.uint32)
    ids = np.fromiter(map(zlib.crc32, map(str.encode, words)), np.uint64, len(words))
    n = min(shingle_size, len(ids))
    shingles = np.zeros(len(ids) - n + 1, np.uint64)
    for i in range(n):
        shingles = shingles * np.uint64(1099511628211) + ids[i:len(ids) - n + 1 + i]
    shingles = _mix(np.unique(shingles))
    # multiply-shift permutations h_k(x) = (a_k x + b_k) >> 32 over the mixed shingle hashes:
    # one multiply-add per (permutation, shingle), a universal family, wrapping in uint64
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    b = rng.integers(0, 2**63, size=num_perm, dtype=np.uint64)
    out = np.full(num_perm, _MASK, np.uint64)
    for i in range(0, len(shingles), 4096):  # bounded memory on long documents
        chunk = shingles[i:i + 4096]
        out = np.minimum(out, (a[:, None] * chunk[None, :] + b[:, None]).min(axis=1))
    return (out >> np.uint64(32)).astype(np.uint32)


class NearDuplicateIndex:
    """LSH over MinHash bands; a candidate counts when its estimated Jaccard >= threshold."""

    def __init__(self, num_perm: int, bands: int, threshold: float):
        self.rows = num_perm // bands
        self.bands = bands
        self.threshold = threshold
        self.buckets: list[dict[bytes, int]] = [{} for _ in range(bands)]
        self.signatures: list[np.ndarray] = []

    def query_insert(self, sig: np.ndarray) -> tuple[int, float] | None:
        """Return (index of the kept near-duplicate, similarity), or insert and return None."""
        keys = [sig[b * self.rows:(b + 1) * self.rows].tobytes() for b in range(self.bands)]
        checked: set[int] = set()
        for b, key in enumerate(keys):
            other = self.buckets[b].get(key)
            if other is None or other in checked:
                continue
            checked.add(other)
            sim = float(np.mean(self.signatures[other] == sig))
            if sim >= self.threshold:
                return other, sim
        idx = len(self.signatures)
        self.signatures.append(sig)
        for b, key in enumerate(keys):
            self.buckets[b].setdefault(key, idx)
        return None
