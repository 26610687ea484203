"""The packed token format: self-describing shard files read through ``np.memmap``.

A shard file is

    header (64 bytes): magic b"HPCLMTOK", version u32, dtype code u32, n_tokens u64, n_docs u64,
                       vocab_size u32, first 16 bytes of the tokenizer's sha256, 12 zero bytes
    tokens: n_tokens x (uint16 | uint32), little-endian
    doc index: (n_docs + 1) x uint64 token offsets; document i is tokens[off[i]:off[i+1]]

The header is written last (after the counts are known), and the file is renamed into place only
when whole, so an interrupted pack never leaves a shard that looks complete. The tokenizer digest
in each header lets the reader refuse a shard from another pack even when it sits next to the
right meta.json.
"""
from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from lib.core.errors import UserError
from lib.core.io import atomic_path, read_json

MAGIC = b"HPCLMTOK"
VERSION = 2
HEADER = struct.Struct("<8sIIQQI16s12x")  # 64 bytes
DTYPES = {1: np.dtype("<u2"), 2: np.dtype("<u4")}
DTYPE_CODES = {"uint16": 1, "uint32": 2}
DTYPE_NAMES = {code: name for name, code in DTYPE_CODES.items()}
META_FILE = "meta.json"
REPACK = "rerun `dvc repro pack`"


def dtype_for_vocab(vocab_size: int, dtype: str) -> np.dtype:
    """The token dtype, refusing a vocab whose ids do not fit it."""
    if dtype not in DTYPE_CODES:
        raise UserError(f"params.yaml: pack.dtype: expected 'uint16' or 'uint32', got {dtype!r}")
    np_dtype = DTYPES[DTYPE_CODES[dtype]]
    if vocab_size - 1 > np.iinfo(np_dtype).max:
        raise UserError(f"vocab_size {vocab_size} does not fit in {dtype} token ids (max id "
                        f"{np.iinfo(np_dtype).max}); lower tokenizer.vocab_size to 65536 or less, "
                        f"or set pack.dtype: uint32 in params.yaml")
    return np_dtype


def _digest16(tokenizer_sha256: str) -> bytes:
    return bytes.fromhex(tokenizer_sha256)[:16] if tokenizer_sha256 else b"\0" * 16


class ShardWriter:
    """Writes documents (arrays of token ids) into one shard file, streaming."""

    def __init__(self, path: str | os.PathLike, dtype: str, vocab_size: int = 0, tokenizer_sha256: str = ""):
        self.path = Path(path)
        self.code = DTYPE_CODES[dtype]
        self.dtype = DTYPES[self.code]
        self.vocab_size, self.tokenizer_sha256 = vocab_size, tokenizer_sha256
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._file = open(self._tmp, "wb")
        self._file.write(b"\0" * HEADER.size)
        self._lengths: list[np.ndarray] = []
        self.n_tokens = 0
        self.n_docs = 0

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(np.concatenate(self._lengths or [[]]))]).astype("<u8")

    def add_docs(self, tokens: np.ndarray, lengths: np.ndarray) -> None:
        """Append documents given as their concatenated tokens and their lengths."""
        self._file.write(np.ascontiguousarray(tokens, dtype=self.dtype).tobytes())
        self._lengths.append(np.asarray(lengths, dtype=np.int64))
        self.n_tokens += len(tokens)
        self.n_docs += len(lengths)

    def close(self) -> str:
        """Finish the file; returns its sha256."""
        self._file.write(self.offsets.tobytes())
        self._file.seek(0)
        self._file.write(HEADER.pack(MAGIC, VERSION, self.code, self.n_tokens, self.n_docs,
                                     self.vocab_size, _digest16(self.tokenizer_sha256)))
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
    vocab_size: int = 0
    tokenizer_digest: bytes = b""

    @property
    def n_docs(self) -> int:
        return len(self.offsets) - 1

    def __reduce__(self):
        # Loader worker processes get the path and map the file themselves: pickling the
        # memmaps would copy every token into each worker.
        return open_shard, (self.path,)


def open_shard(path: str | os.PathLike) -> Shard:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: shard not found; {REPACK}")
    size = path.stat().st_size
    with open(path, "rb") as f:
        raw = f.read(HEADER.size)
    if len(raw) < HEADER.size:
        raise UserError(f"{path}: truncated shard (no header); {REPACK}")
    magic, version, code, n_tokens, n_docs, vocab_size, digest = HEADER.unpack(raw)
    if magic != MAGIC or version != VERSION or code not in DTYPES:
        raise UserError(f"{path}: not a version-{VERSION} token shard (magic {magic!r}, version {version}); "
                        f"{REPACK}")
    dtype = DTYPES[code]
    expected = HEADER.size + n_tokens * dtype.itemsize + (n_docs + 1) * 8
    if size != expected:
        raise UserError(f"{path}: size {size} does not match its header ({expected}); {REPACK}")
    tokens = np.memmap(path, dtype=dtype, mode="r", offset=HEADER.size, shape=(n_tokens,))
    offsets = np.memmap(path, dtype="<u8", mode="r", offset=HEADER.size + n_tokens * dtype.itemsize,
                        shape=(n_docs + 1,))
    return Shard(path, tokens, offsets, vocab_size, digest)


def read_meta(shards_dir: str | os.PathLike, tokenizer_sha256: str | None = None) -> dict:
    """The pack's meta.json, checked against the tokenizer when its hash is given."""
    meta_path = Path(shards_dir) / META_FILE
    meta = read_json(meta_path)
    if tokenizer_sha256 is not None and meta.get("tokenizer_sha256") != tokenizer_sha256:
        raise UserError(f"{meta_path}: shards were packed with tokenizer {str(meta.get('tokenizer_sha256'))[:12]} "
                        f"but the tokenizer given is {tokenizer_sha256[:12]}; {REPACK}")
    return meta


def open_split(split_dir: str | os.PathLike, tokenizer_sha256: str | None = None,
               verify: bool = False) -> list[Shard]:
    """Open every shard of a split, each header checked against the split's meta.json (and the
    tokenizer's hash when given); ``verify`` also checks each file's sha256 (reads every byte)."""
    split_dir = Path(split_dir)
    meta_path = split_dir.parent / META_FILE
    meta = read_meta(split_dir.parent, tokenizer_sha256)
    split = meta.get("splits", {}).get(split_dir.name)
    if split is None:
        raise UserError(f"{meta_path}: has no split '{split_dir.name}'; {REPACK}")
    digest = _digest16(meta.get("tokenizer_sha256", ""))
    shards = []
    for entry in split["shards"]:
        shard = open_shard(split_dir / entry["file"])
        found = {"tokens": len(shard.tokens), "docs": shard.n_docs, "vocab_size": shard.vocab_size,
                 "dtype": DTYPE_NAMES[2 if shard.tokens.dtype.itemsize == 4 else 1]}
        wanted = {"tokens": entry["tokens"], "docs": entry["docs"], "vocab_size": meta.get("vocab_size"),
                  "dtype": meta.get("dtype")}
        for key in found:
            if found[key] != wanted[key]:
                raise UserError(f"{shard.path}: header says {key}={found[key]} but {meta_path} says "
                                f"{wanted[key]}; the shard belongs to another pack, {REPACK}")
        if shard.tokenizer_digest != digest:
            raise UserError(f"{shard.path}: packed with tokenizer {shard.tokenizer_digest.hex()[:12]}, not "
                            f"{digest.hex()[:12]} as {meta_path} says; {REPACK}")
        if verify and file_sha256(shard.path) != entry["sha256"]:
            raise UserError(f"{shard.path}: sha256 differs from {meta_path}; the file changed, {REPACK}")
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


class SplitWriter:
    """Writes batches of documents into shards of about ``shard_tokens`` tokens, in order.

    A shard closes after the document that takes it to ``shard_tokens`` or more, so where the
    shards split depends only on the documents -- never on how they were batched.
    """

    def __init__(self, out_dir: Path, dtype: str, shard_tokens: int, vocab_size: int = 0,
                 tokenizer_sha256: str = ""):
        self.out_dir, self.dtype, self.shard_tokens = Path(out_dir), dtype, shard_tokens
        self.vocab_size, self.tokenizer_sha256 = vocab_size, tokenizer_sha256
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.shards: list[dict] = []
        self._writer: ShardWriter | None = None

    def add_docs(self, tokens: np.ndarray, lengths: np.ndarray) -> None:
        ends = np.cumsum(lengths)
        starts = ends - lengths
        i, n = 0, len(lengths)
        while i < n:
            if self._writer is None:
                name = f"shard_{len(self.shards):05d}.bin"
                self._writer = ShardWriter(self.out_dir / name, self.dtype, self.vocab_size, self.tokenizer_sha256)
            room = self.shard_tokens - self._writer.n_tokens
            # the first document j whose end reaches the room left closes the shard
            j = int(np.searchsorted(ends, starts[i] + room, side="left"))
            full = j < n
            j = min(j, n - 1)
            self._writer.add_docs(tokens[starts[i]:ends[j]], lengths[i:j + 1])
            i = j + 1
            if full:
                self._finish()

    def close(self) -> dict:
        if self._writer is not None:
            self._finish()
        return {"shards": self.shards, "tokens": sum(s["tokens"] for s in self.shards),
                "docs": sum(s["docs"] for s in self.shards)}

    def abort(self) -> None:
        if self._writer is not None:
            self._writer.abort()
            self._writer = None

    def _finish(self) -> None:
        w, self._writer = self._writer, None
        digest = w.close()
        self.shards.append({"file": w.path.name, "tokens": w.n_tokens, "docs": w.n_docs, "sha256": digest})


def write_split(out_dir: Path, docs: Iterable[list[int]], dtype: str, shard_tokens: int,
                vocab_size: int = 0, tokenizer_sha256: str = "") -> dict:
    """Write documents (one list of ids each) into shards; returns the split's meta."""
    writer = SplitWriter(out_dir, dtype, shard_tokens, vocab_size, tokenizer_sha256)
    try:
        for ids in docs:
            arr = np.asarray(ids, dtype=DTYPES[DTYPE_CODES[dtype]])
            writer.add_docs(arr, np.array([len(arr)], dtype=np.int64))
        return writer.close()
    except BaseException:
        writer.abort()
        raise


def iter_documents(shards: list[Shard]) -> Iterator[np.ndarray]:
    for shard in shards:
        for i in range(shard.n_docs):
            yield shard.tokens[shard.offsets[i]:shard.offsets[i + 1]]


def concat_tokens(shards: list[Shard]) -> np.ndarray:
    """All tokens of a split in one array (for small splits: statistics such as unigram entropy)."""
    return np.concatenate([np.asarray(s.tokens) for s in shards])
