"""Atomic, deterministic file output and line-numbered JSONL input.

Every output is written under a temporary name next to its destination and renamed into
place when whole, so an interrupted stage never leaves a file that looks complete. The file gets
the permissions the user's umask gives, as with any other tool (``mkstemp`` alone makes it 0600,
which teammates on a shared file system cannot read).
JSON is written with sorted keys and a trailing newline so equal content gives equal bytes.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterable, Iterator

from lib.core.errors import UserError


def current_umask() -> int:
    """The process umask. Read from /proc where it is shown; elsewhere set and restored at once
    (the only portable way to read it)."""
    with contextlib.suppress(OSError, ValueError):
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.fchmod(f.fileno(), 0o666 & ~current_umask())  # what open() would have given
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def dumps_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_text(path, dumps_json(obj))


def read_json(path: str | os.PathLike) -> Any:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise UserError(f"{path}: line {err.lineno}: invalid JSON ({err.msg})") from None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path (file or directory) that replaces ``path`` on clean exit."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # mkdtemp only reserves a unique name; the caller creates the file or directory with open() or
    # mkdir(), which apply the umask.
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp"))
    shutil.rmtree(tmp)
    try:
        yield tmp
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        elif path.exists() or path.is_symlink():
            path.unlink()
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


class JsonlWriter:
    """Streams records to a JSONL file that appears atomically when the writer closes cleanly."""

    def __init__(self, path: str | os.PathLike):
        self._ctx = atomic_path(path)
        self._tmp = self._ctx.__enter__()
        self._file = open(self._tmp, "w", encoding="utf-8", newline="\n")
        self.count = 0

    def write(self, record: dict) -> None:
        self._file.write(json.dumps(record, sort_keys=True, ensure_ascii=False) + "\n")
        self.count += 1

    def __enter__(self) -> "JsonlWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self._file.close()
        self._ctx.__exit__(exc_type, exc, tb)


def write_jsonl(path: str | os.PathLike, records: Iterable[dict]) -> int:
    with JsonlWriter(path) as out:
        for record in records:
            out.write(record)
    return out.count


def iter_jsonl_lines(path: str | os.PathLike) -> Iterator[tuple[int, str]]:
    """Yield (line number, line) for the non-blank lines of a JSONL file."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if line.strip():
                yield lineno, line


def parse_jsonl_line(line: str | bytes, where: str) -> dict:
    """One JSONL record; anything but a JSON object stops with ``where`` (file:line) named.

    The message states the fault only (column, JSON's reason, the text there); callers add the
    advice that fits them (SFT: "or set sft.on_bad_record: skip"), so it is never said twice."""
    if isinstance(line, bytes):  # pack reads raw lines: decoding is part of parsing them
        try:
            line = line.decode("utf-8")
        except UnicodeDecodeError as err:
            raise UserError(f"{where}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    try:
        record = json.loads(line)
    except json.JSONDecodeError as err:
        reason = err.msg.removesuffix(" at")  # some of json's reasons end in "at", before a position
        raise UserError(f"{where}: invalid JSON at column {err.colno}: {reason} "
                        f"(near {_excerpt(line, err.pos)})") from None
    if not isinstance(record, dict):
        raise UserError(f"{where}: expected a JSON object, got {type(record).__name__}")
    return record


def _excerpt(line: str, pos: int, width: int = 24) -> str:
    """A short quoted piece of ``line`` ending at ``pos``, so a long record stays one readable line."""
    start = max(0, pos - width)
    text = line[start:pos + 8].rstrip("\r\n")
    return ("..." if start else "") + repr(text)


def iter_jsonl(path: str | os.PathLike) -> Iterator[tuple[int, dict]]:
    """Yield (line number, record) pairs; a malformed line stops with its file and line number."""
    for lineno, line in iter_jsonl_lines(path):
        yield lineno, parse_jsonl_line(line, f"{path}:{lineno}")


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    return [record for _, record in iter_jsonl(path)]


def write_csv(path: str | os.PathLike, header: list[str], rows: Iterable[Iterable]) -> None:
    """A small CSV (training curves for DVC plots); floats with 6 significant digits."""
    def fmt(v):
        return f"{v:.6g}" if isinstance(v, float) else str(v)
    lines = [",".join(header)] + [",".join(fmt(v) for v in row) for row in rows]
    atomic_write_text(path, "\n".join(lines) + "\n")
