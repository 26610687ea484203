"""Packing a corpus split into shards: params and the document encoder."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from lib.io import iter_jsonl
from lib.params import check
from lib.tokenizer import Tokenizer


@dataclass
class PackParams:
    dtype: str = "uint16"
    shard_tokens: int = 1_000_000

    def __post_init__(self):
        check(self.dtype in ("uint16", "uint32"), "dtype", "must be 'uint16' or 'uint32'")
        check(self.shard_tokens >= 1024, "shard_tokens", "must be >= 1024")


def encoded_docs(tokenizer: Tokenizer, path: Path, stats: dict) -> Iterator[list[int]]:
    """BOS + tokens + EOS per document, in corpus order; counts text bytes for bits per byte."""
    for _, doc in iter_jsonl(path):
        stats["text_bytes"] = stats.get("text_bytes", 0) + len(doc["text"].encode("utf-8"))
        yield [tokenizer.bos_id] + tokenizer.encode(doc["text"]) + [tokenizer.eos_id]
