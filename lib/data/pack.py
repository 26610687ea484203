"""Packing a corpus split into shards: stream the JSONL, encode chunks of documents on the data
engine (local processes or Ray), write the results in corpus order.

Memory stays flat: the reader hands out chunks of about ``CHUNK_BYTES`` of raw lines, at most
``2 * workers`` chunks are in flight, and the writer streams each shard to disk. The output
depends only on the documents, never on the worker count or the chunking.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from lib.core.params import check
from lib.data.shards import DTYPE_CODES, DTYPES, SplitWriter, dtype_for_vocab
from lib.engine import Engine, Work
from lib.engine.chunks import CHUNK_BYTES, Chunk, chunk_texts, read_chunks
from lib.engine.local import LocalEngine
from lib.tokenizer import Tokenizer


@dataclass
class PackParams:
    dtype: str = "auto"  # auto: uint16 when every id fits (vocab <= 65536), else uint32
    shard_tokens: int = 1_000_000
    workers: int = 2

    def __post_init__(self):
        check(self.dtype == "auto" or self.dtype in DTYPE_CODES, "dtype", "must be 'auto', 'uint16' or 'uint32'")
        check(self.shard_tokens >= 1024, "shard_tokens", "must be >= 1024")
        check(self.workers >= 1, "workers", "must be >= 1 (1 encodes in the stage's own process)")


@dataclass
class Encoded:
    tokens: np.ndarray   # BOS + ids + EOS of every document, concatenated
    lengths: np.ndarray  # tokens per document
    text_bytes: int      # UTF-8 bytes of the documents' text (for bits per byte)


def _worker_state(context: tuple[bytes, str]) -> tuple[Tokenizer, str]:
    model_bytes, dtype = context
    return Tokenizer(model_bytes), dtype


def _encode(chunk: Chunk, state: tuple[Tokenizer, str]) -> Encoded:
    return encode_chunk(chunk, *state)


def encode_chunk(chunk: Chunk, tok: Tokenizer, dtype: str = "uint16") -> Encoded:
    """Parse and encode one chunk of JSONL lines: BOS + tokens + EOS per document."""
    texts = [text for _, text in chunk_texts(chunk)]
    ids = tok.encode_batch(texts)
    lengths = np.fromiter((len(x) + 2 for x in ids), dtype=np.int64, count=len(ids))
    tokens = np.empty(int(lengths.sum()), dtype=DTYPES[DTYPE_CODES[dtype]])
    pos = 0
    for x, n in zip(ids, lengths.tolist()):  # one slice assignment per document, not per token
        tokens[pos] = tok.bos_id
        tokens[pos + 1:pos + n - 1] = x
        tokens[pos + n - 1] = tok.eos_id
        pos += n
    return Encoded(tokens, lengths, sum(len(t.encode("utf-8")) for t in texts))


def encode_in_order(chunks: Iterator[Chunk], tokenizer: Tokenizer, dtype: str, engine: Engine) -> Iterator[Encoded]:
    """Encoded chunks in input order; the engine encodes ahead a bounded number of chunks at a
    time (local: ``2 * workers``), so memory does not grow with the corpus."""
    work = Work(_encode, (tokenizer.model_bytes, dtype), _worker_state)
    return engine.map_ordered(work, chunks)


def token_dtype(vocab_size: int, dtype: str) -> str:
    """``pack.dtype`` resolved for this vocabulary: 'auto' takes the smallest dtype that holds every
    id (a base tokenizer such as Llama 3's 128k needs uint32; ours fits in uint16)."""
    if dtype == "auto":
        dtype = "uint16" if vocab_size - 1 <= np.iinfo(np.uint16).max else "uint32"
    dtype_for_vocab(vocab_size, dtype)  # an explicit dtype too small for the vocab stops here
    return dtype


def pack_split(corpus_file: Path, out_dir: Path, tokenizer: Tokenizer, params: PackParams,
               chunk_bytes: int = CHUNK_BYTES, engine: Engine | None = None) -> dict:
    """Encode one corpus split into shards under ``out_dir`` on ``engine`` (default: local
    processes, ``params.workers``); returns the split's meta."""
    engine = engine or LocalEngine(params.workers)
    dtype = token_dtype(tokenizer.vocab_size, params.dtype)
    writer = SplitWriter(out_dir, dtype, params.shard_tokens, tokenizer.vocab_size, tokenizer.sha256)
    text_bytes = 0
    try:
        chunks = read_chunks(corpus_file, chunk_bytes)
        for enc in encode_in_order(chunks, tokenizer, dtype, engine):
            writer.add_docs(enc.tokens, enc.lengths)
            text_bytes += enc.text_bytes
        info = writer.close()
    except BaseException:
        writer.abort()
        raise
    return {**info, "text_bytes": text_bytes}


def pack_meta(tokenizer: Tokenizer, params: PackParams) -> dict:
    """meta.json without its splits: what every reader checks the shards against."""
    return {"vocab_size": tokenizer.vocab_size, "tokenizer_sha256": tokenizer.sha256, "dtype": token_dtype(tokenizer.vocab_size, params.dtype),
            "bos_id": tokenizer.bos_id, "eos_id": tokenizer.eos_id, "splits": {}}
