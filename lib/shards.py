"""The packed token format: self-describing shard files read through ``np.memmap``.

A shard file is

    header (64 bytes): magic b"HPCLMTOK", version u32, dtype code u32, n_tokens u64, n_docs u64,
                       32 reserved zero bytes
    tokens: n_tokens x (uint16 | uint32), little-endian
    doc index: (n_docs + 1) x uint64 token offsets; document i is tokens[off[i]:off[i+1]]

The header is written last (after the token count is known), and the file is renamed into
place only when whole, so an interrupted pack never leaves a shard that looks complete.
"""
from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from lib.errors import UserError
from lib.io import atomic_path, read_json

MAGIC = b"HPCLMTOK"
VERSION = 1
HEADER = struct.Struct("<8sIIQQ32x")  # 64 bytes
DTYPES = {1: np.dtype("<u2"), 2: np.dtype("<u4")}
DTYPE_CODES = {"uint16": 1, "uint32": 2}
META_FILE = "meta.json"


def dtype_for_vocab(vocab_size: int, dtype: str) -> np.dtype:
    """The token dtype, refusing a vocab whose ids do not fit it."""
    if dtype not in DTYPE_CODES:
        raise UserError(f"params.yaml: pack.dtype: expected 'uint16' or 'uint32', got {dtype!r}")
    np_dtype = DTYPES[DTYPE_CODES[dtype]]
    if vocab_size - 1 > np.iinfo(np_dtype).max:
        raise UserError(f"vocab_size {vocab_size} does not fit in {dtype} token ids (max id "
                        f"{np.iinfo(np_dtype).max}); lower tokenizer.vocab_size to 65536 or less, "
                        f"or set pack.dtype: uint32")
    return np_dtype


class ShardWriter:
    """Writes documents (lists of token ids) into one shard file, streaming."""

    def __init__(self, path: str | os.PathLike, dtype: str):
        self.path = Path(path)
        self.code = DTYPE_CODES[dtype]
        self.dtype = DTYPES[self.code]
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._file = open(self._tmp, "wb")
        self._file.write(b"\0" * HEADER.size)
        self.offsets = [0]

    @property
    def n_tokens(self) -> int:
        return self.offsets[-1]

    def add(self, ids: np.ndarray | list[int]) -> None:
        arr = np.asarray(ids, dtype=self.dtype)
        self._file.write(arr.tobytes())
        self.offsets.append(self.offsets[-1] + len(arr))

    def close(self) -> str:
        """Finish the file; returns its sha256."""
        self._file.write(np.asarray(self.offsets, dtype="<u8").tobytes())
        self._file.seek(0)
        self._file.write(HEADER.pack(MAGIC, VERSION, self.code, self.n_tokens, len(self.offsets) - 1))
        self._file.close()
        digest = file_sha256(self._tmp)
        self._ctx.__exit__(None, None, None)
        return digest

    def abort(self) -> None:
        self._file.close()
        self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)


@dataclass
class Shard:
    path: Path
    tokens: np.ndarray     # memmap, zero-copy
    offsets: np.ndarray    # memmap of n_docs + 1 offsets

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1


def open_shard(path: str | os.PathLike) -> Shard:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: shard not found; run `dvc repro pack`")
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(HEADER.size)
    if len(raw) < HEADER.size:
        raise UserError(f"{path}: truncated shard (no header); rerun `dvc repro pack`")
    magic, version, code, n_tokens, n_docs = HEADER.unpack(raw)
    if magic != MAGIC or version != VERSION or code not in DTYPES:
        raise UserError(f"{path}: not a version-{VERSION} token shard (magic {magic!r}, version {version})")
    dtype = DTYPES[code]
    expected = HEADER.size + n_tokens * dtype.itemsize + (n_docs + 1) * 8
    if size != expected:
        raise UserError(f"{path}: size {size} does not match its header ({expected}); rerun `dvc repro pack`")
    tokens = np.memmap(path, dtype=dtype, mode="r", offset=HEADER.size, shape=(n_tokens,))
    offsets = np.memmap(path, dtype="<u8", mode="r", offset=HEADER.size + n_tokens * dtype.itemsize,
                        shape=(n_docs + 1,))
    return Shard(path, tokens, offsets)


def open_split(split_dir: str | os.PathLike, tokenizer_sha256: str | None = None) -> list[Shard]:
    """Open every shard of a split, checked against the split's meta.json (and tokenizer)."""
    split_dir = Path(split_dir)
    meta_path = split_dir.parent / META_FILE
    meta = read_json(meta_path)
    if tokenizer_sha256 is not None and meta.get("tokenizer_sha256") != tokenizer_sha256:
        raise UserError(f"{meta_path}: shards were packed with a different tokenizer than the one given; "
                        f"rerun `dvc repro pack`")
    split = meta["splits"].get(split_dir.name)
    if split is None:
        raise UserError(f"{meta_path}: has no split '{split_dir.name}'")
    shards = []
    for entry in split["shards"]:
        shard = open_shard(split_dir / entry["file"])
        if len(shard.tokens) != entry["tokens"]:
            raise UserError(f"{shard.path}: holds {len(shard.tokens)} tokens but {meta_path} says "
                            f"{entry['tokens']}; rerun `dvc repro pack`")
        shards.append(shard)
    if not shards:
        raise UserError(f"{split_dir}: no shards; is the corpus split empty?")
    return shards


def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def write_split(out_dir: Path, docs: Iterable[list[int]], dtype: str, shard_tokens: int) -> dict:
    """Write documents into shards of about ``shard_tokens`` tokens; returns the split's meta."""
    out_dir.mkdir(parents=True, exist_ok=True)
    shards, writer, index = [], None, 0

    def finish(w: ShardWriter) -> None:
        digest = w.close()
        shards.append({"file": w.path.name, "tokens": w.n_tokens, "docs": len(w.offsets) - 1,
                       "sha256": digest})

    try:
        for ids in docs:
            if writer is None:
                writer = ShardWriter(out_dir / f"shard_{index:05d}.bin", dtype)
                index += 1
            writer.add(ids)
            if writer.n_tokens >= shard_tokens:
                finish(writer)
                writer = None
        if writer is not None:
            finish(writer)
    except BaseException:
        if writer is not None:
            writer.abort()
        raise
    return {"shards": shards, "tokens": sum(s["tokens"] for s in shards),
            "docs": sum(s["docs"] for s in shards)}


def iter_documents(shards: list[Shard]) -> Iterator[np.ndarray]:
    for shard in shards:
        for i in range(shard.n_docs):
            yield shard.tokens[shard.offsets[i]:shard.offsets[i + 1]]


def concat_tokens(shards: list[Shard]) -> np.ndarray:
    """All tokens of a split in one array (for small splits: statistics such as unigram entropy)."""
    return np.concatenate([np.asarray(s.tokens) for s in shards])
