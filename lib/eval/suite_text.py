"""The text of an eval suite file, read generically: whatever its kind, every string value and
every list of strings in a record except "id" (a question, its choices, a rationale, a passage).

Decontamination needs the words of each suite, not their meaning, so it does not depend on the
scorers' record shapes; a suite kind added later is covered without a change here.
"""
from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

from lib.core.errors import UserError
from lib.core.io import iter_jsonl


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of the file's bytes: a suite's identity in metrics/eval.json."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def record_texts(record: dict) -> Iterator[str]:
    for key, value in record.items():
        if key == "id":
            continue
        if isinstance(value, str):
            yield value
        elif isinstance(value, list):
            yield from (v for v in value if isinstance(v, str))


def suite_texts(path: str | Path, key: str) -> Iterator[tuple[str, str]]:
    """(example id, text) for every text field of every record of the JSONL suite at ``path``.
    ``key`` is the params key that named the file, for the one-line message when it is missing
    or malformed. A record without an id is named by its line number."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{key}: {path} not found; fix the path in params.yaml or create the suite file")
    for lineno, record in iter_jsonl(path):
        example = str(record.get("id", f"line {lineno}"))
        for text in record_texts(record):
            yield example, text
