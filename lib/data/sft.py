"""SFT data: read instruction records, split train/val, encode with the chat template and batch
them, right-padded (``Batch.right_padded``), with the assistant-only loss mask."""
from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from lib.core.errors import UserError
from lib.core.io import iter_jsonl_lines, parse_jsonl_line
from lib.data.batch import Batch
from lib.tokenizer.chat import Message, encode_chat, to_messages

MAX_REPORTED_BAD = 10  # bad records listed by line in the log (stages/sft.py); all are counted


@dataclass
class Example:
    ids: list[int]
    mask: list[int]
    messages: list[Message] | None = None  # the conversation it encodes (for sample answers)


def read_conversations(path: Path, on_bad_record: str = "error",
                       stats: dict | None = None) -> Iterator[tuple[int, dict, list[Message]]]:
    """Yield (line number, record, messages) for each usable record of a JSONL file.

    A malformed line (invalid JSON, not an object, unknown shape, roles out of order, no assistant
    reply) stops with its file and line number, or with ``on_bad_record: skip`` is counted in
    ``stats["bad_records"]`` (the first few listed in ``stats["bad_examples"]``) and skipped.
    """
    stats = {} if stats is None else stats
    stats.setdefault("bad_records", 0)
    stats.setdefault("bad_examples", [])
    if not path.exists():
        raise UserError(f"{path}: SFT data not found (sft.data in params.yaml)")
    for lineno, line in iter_jsonl_lines(path):
        where = f"{path}:{lineno}"
        try:
            record = parse_jsonl_line(line, where)
            messages = to_messages(record, where)
            if messages[-1].role != "assistant":
                raise UserError(f"{where}: the conversation must end with an assistant reply to learn from")
        except UserError as err:
            if on_bad_record == "error":
                raise UserError(f"{err}; fix the record or set sft.on_bad_record: skip") from None
            stats["bad_records"] += 1
            if len(stats["bad_examples"]) < MAX_REPORTED_BAD:
                stats["bad_examples"].append(str(err))
            continue
        yield lineno, record, messages


def load_examples(path: Path, tokenizer, max_len: int, val_fraction: float, truncate: str = "truncate",
                  on_bad_record: str = "error") -> tuple[list, list, dict]:
    """Encode every record; split by a hash of its content (stable as records are added).

    An example of more than ``max_len`` input tokens is cut to its first ``max_len + 1`` tokens
    (``truncate``; dropped if no assistant token is left) or dropped whole (``drop``)."""
    train, val = [], []
    stats = {"records": 0, "bad_records": 0, "bad_examples": [], "truncated": 0, "dropped_too_long": 0,
             "train_tokens": 0, "train_loss_tokens": 0}
    for _, record, messages in read_conversations(path, on_bad_record, stats):
        ids, mask = encode_chat(tokenizer, messages)
        stats["records"] += 1
        if len(ids) > max_len + 1:
            if truncate == "drop":
                stats["dropped_too_long"] += 1
                continue
            ids, mask = ids[:max_len + 1], mask[:max_len + 1]
            if sum(mask[1:]) == 0:
                stats["dropped_too_long"] += 1
                continue
            stats["truncated"] += 1
        digest = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).digest()
        bucket = int.from_bytes(digest[:8], "big") / 2**64
        if bucket < val_fraction:
            val.append(Example(ids, mask, messages))
        else:
            train.append(Example(ids, mask, messages))
            stats["train_tokens"] += len(ids) - 1
            stats["train_loss_tokens"] += sum(mask[1:])
    if not train or not val:
        raise UserError(f"{path}: need at least one train and one val example (have {len(train)} train, "
                        f"{len(val)} val); add records or change sft.val_fraction")
    stats.update(train_examples=len(train), val_examples=len(val))
    return train, val, stats


def collate(examples: list[Example], pad_id: int) -> Batch:
    """Right-padded inputs and targets with their loss mask; padding is masked out of the loss."""
    return Batch.right_padded([e.ids for e in examples], [e.mask for e in examples], pad_id)


class EpochBatches:
    """Batch ``step`` of a seeded per-epoch shuffle: resumable from the step index alone."""

    def __init__(self, examples: list[Example], batch_size: int, seed: int, pad_id: int):
        self.examples, self.batch_size, self.seed, self.pad_id = examples, batch_size, seed, pad_id
        self.per_epoch = math.ceil(len(examples) / batch_size)

    def steps(self, epochs: int) -> int:
        return epochs * self.per_epoch

    def batch(self, step: int) -> Batch:
        epoch, k = divmod(step, self.per_epoch)
        order = np.random.default_rng([self.seed, epoch]).permutation(len(self.examples))
        picked = order[k * self.batch_size:(k + 1) * self.batch_size]
        return collate([self.examples[i] for i in picked], self.pad_id)

    def all_batches(self) -> Iterator[Batch]:
        for k in range(0, len(self.examples), self.batch_size):
            yield collate(self.examples[k:k + self.batch_size], self.pad_id)
