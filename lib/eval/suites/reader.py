"""Reading a suite file: JSONL, one example per line, each with a unique string "id" and the
fields its kind needs. Every mistake stops with one line naming the file and line (or the
params key, for a missing file). The suite's identity is the sha256 of its bytes: scores are
recorded under ``<name>@<first 8 hex>`` so a changed file shows up as a new key, never a delta."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from lib.core.errors import UserError
from lib.core.io import parse_jsonl_line
from lib.eval.suites import KINDS

JSON_TYPES = {str: "a string", int: "an integer", list: "a list"}


@dataclass(frozen=True)
class Suite:
    name: str
    kind: str
    path: Path
    sha256: str
    records: list[dict]

    @property
    def key(self) -> str:
        """How metrics/eval.json names this suite's scores."""
        return f"{self.name}@{self.sha256[:8]}"

    def identity(self) -> dict:
        return {"kind": self.kind, "sha256": self.sha256, "examples": len(self.records)}


def read_suite(name: str, kind: str, path: str | Path, key: str) -> Suite:
    """The validated suite at ``path``; ``key`` is its params key (``eval.suites[2]``) for messages."""
    path = Path(path)
    if kind not in KINDS:
        raise UserError(f"{key}.kind: unknown suite kind {kind!r} (known: {', '.join(KINDS)})")
    if not path.is_file():
        raise UserError(f"{key}.path: {path}: suite file not found; fix the path in params.yaml or remove the suite")
    data = path.read_bytes()
    records = parse_records(data, str(path), kind)
    return Suite(name, kind, path, hashlib.sha256(data).hexdigest(), records)


def parse_records(data: bytes, where: str, kind: str) -> list[dict]:
    spec, records, first_line = KINDS[kind], [], {}
    for lineno, line in enumerate(data.split(b"\n"), start=1):
        if not line.strip():
            continue
        at = f"{where}:{lineno}"
        record = parse_jsonl_line(line, at)
        check_fields(record, {"id": str, **spec.fields}, at, kind)
        if record["id"] in first_line:
            raise UserError(f"{at}: duplicate id {record['id']!r} (first at line {first_line[record['id']]}); "
                            f"ids must be unique within a suite")
        first_line[record["id"]] = lineno
        spec.check(record, at)
        records.append(record)
    if not records:
        raise UserError(f"{where}: no examples; expected one JSON object per line "
                        f"with keys {', '.join(['id', *spec.fields])}")
    return records


def check_fields(record: dict, fields: dict[str, type], at: str, kind: str) -> None:
    for field, tp in fields.items():
        if field not in record:
            raise UserError(f"{at}: missing key '{field}' (a {kind} example has {', '.join(fields)})")
        value = record[field]
        if not isinstance(value, tp) or isinstance(value, bool):
            raise UserError(f"{at}: '{field}' must be {JSON_TYPES[tp]}, got {type(value).__name__}")
        if tp is str and field == "id" and not value:
            raise UserError(f"{at}: 'id' is empty")
