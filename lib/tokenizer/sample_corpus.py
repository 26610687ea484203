"""The tokenizer stage's sample of the corpus (``lib.tokenizer.sample``), drawn on the data engine
in two passes over chunks of the JSONL split: the workers send back the pieces' keys only, the
stage's process finds the size-th smallest, then the workers send back the pieces at or under it.
So the stage's process holds at most the sample (and 2 x size keys), and the sample is the same
list as ``sample_texts`` of the split's texts on any engine, for any chunking."""
from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from lib.engine import Engine, Work
from lib.engine.chunks import CHUNK_BYTES, Chunk, chunk_texts, read_chunks
from lib.engine.local import LocalEngine
from lib.tokenizer.sample import in_corpus_order, keyed_pieces

NO_LIMIT = np.iinfo(np.uint64).max


def _chunk_docs(chunk: Chunk) -> Iterator[tuple[int, str]]:
    return ((line - 1, text) for line, text in chunk_texts(chunk))  # line n holds document n - 1


def _chunk_keys(chunk: Chunk, context: tuple[int, int]) -> np.ndarray:
    max_bytes, seed = context
    return np.fromiter((k for k, _, _, _ in keyed_pieces(_chunk_docs(chunk), max_bytes, seed)), dtype=np.uint64)


def _chunk_pieces(chunk: Chunk, context: tuple[int, int, int]) -> list[tuple[int, int, int, str]]:
    max_bytes, seed, limit = context
    return [k for k in keyed_pieces(_chunk_docs(chunk), max_bytes, seed) if k[0] <= limit]


def _size_th_key(keys: Iterable[np.ndarray], size: int) -> int:
    """The size-th smallest of all ``keys`` (NO_LIMIT when there are fewer), holding at most
    2 x size keys plus one chunk's at a time."""
    low = np.empty(0, dtype=np.uint64)
    for part in keys:
        low = np.concatenate([low, part])
        if len(low) > 2 * size:
            low = np.partition(low, size - 1)[:size]
    return int(np.partition(low, size - 1)[size - 1]) if len(low) >= size else int(NO_LIMIT)


def sample_corpus(path: Path, size: int, max_bytes: int, seed: int, engine: Engine | None = None,
                  chunk_bytes: int | None = None) -> list[str]:
    """``sample_texts`` of the JSONL corpus file ``path`` (line n: document n - 1), drawn on
    ``engine`` (default: this process)."""
    engine = engine or LocalEngine(1)
    chunk_bytes = chunk_bytes or CHUNK_BYTES
    limit = int(NO_LIMIT)
    if size:
        keys = engine.map_ordered(Work(_chunk_keys, (max_bytes, seed)), read_chunks(path, chunk_bytes))
        limit = _size_th_key(keys, size)
    parts = engine.map_ordered(Work(_chunk_pieces, (max_bytes, seed, limit)), read_chunks(path, chunk_bytes))
    kept = (k for part in parts for k in part)
    return in_corpus_order(kept, size)
