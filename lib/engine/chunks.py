"""JSONL files handed to the engine in chunks of raw lines: the stage's process only splits the
file at line ends, the workers parse. A chunk carries its first line number, so a worker can
name a bad line and key a document by its position, whatever the chunk size."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from lib.core.errors import UserError
from lib.core.io import parse_jsonl_line

CHUNK_BYTES = 1 << 20  # raw JSONL per task: large enough to hide the pickling, small for memory


@dataclass
class Chunk:
    path: str
    first_line: int      # 1-based line number of lines[0]
    lines: list[bytes]


def read_chunks(path: Path, chunk_bytes: int = CHUNK_BYTES) -> Iterator[Chunk]:
    """Raw JSONL lines in chunks of about ``chunk_bytes``; parsing happens in the workers."""
    if not path.exists():
        raise UserError(f"{path}: file not found; run `dvc repro corpus` first")
    lines, size, first = [], 0, 1
    with open(path, "rb") as f:
        for lineno, line in enumerate(f, start=1):
            if not lines:
                first = lineno
            lines.append(line)
            size += len(line)
            if size >= chunk_bytes:
                yield Chunk(str(path), first, lines)
                lines, size = [], 0
    if lines:
        yield Chunk(str(path), first, lines)


def chunk_texts(chunk: Chunk) -> Iterator[tuple[int, str]]:
    """(line number, text) of each document in the chunk; blank lines are skipped."""
    for i, line in enumerate(chunk.lines):
        if not line.strip():
            continue
        where = f"{chunk.path}:{chunk.first_line + i}"
        record = parse_jsonl_line(line, where)
        if not isinstance(record.get("text"), str):
            raise UserError(f"{where}: expected an object with a string 'text' field")
        yield chunk.first_line + i, record["text"]
