"""Raw document store: files named by content hash (with their format's extension) and one
manifest record per source item."""
from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

from lib.core.io import atomic_write_bytes
from lib.formats.registry import FORMATS, UNKNOWN, default_content_type, sniff


def record(source: str, url: str | None = None, sha256: str | None = None, nbytes: int = 0,
           type_: str = "unknown", content_type: str | None = None, reason: str | None = None,
           path: str | None = None) -> dict:
    """The manifest record; every key is always present so readers need no defaults."""
    return {"source": source, "url": url, "sha256": sha256, "bytes": nbytes, "type": type_,
            "content_type": content_type, "status": "failed" if reason else "ok",
            "reason": reason, "path": path}


def store_document(docs_dir: Path, out_dir: str, source: str, url: str | None, data: bytes,
                   content_type: str = "", name_hint: str = "") -> dict:
    """Write ``data`` as ``docs_dir/<sha256>.<ext>`` unless a document of the same content is
    there, and return its manifest record (naming ``out_dir/docs``). Safe to call from several
    processes at once: the name is the content, and a concurrent duplicate writes the same bytes."""
    if not data:
        return record(source, url, content_type=content_type or None, reason="empty")
    type_ = sniff(data, name_hint or url or source, content_type)
    ctype = content_type or default_content_type(type_)
    sha = hashlib.sha256(data).hexdigest()
    if type_ == UNKNOWN:
        return record(source, url, sha, len(data), type_, ctype, reason="unsupported_type")
    name = f"{sha}.{FORMATS[type_].extensions[0]}"
    if not (docs_dir / name).exists():
        atomic_write_bytes(docs_dir / name, data)
    return record(source, url, sha, len(data), type_, ctype, path=f"{out_dir.rstrip('/')}/docs/{name}")


class RawStore:
    """Writes documents under ``tmp_dir/docs`` while manifest paths name ``out_dir/docs``; counts
    the distinct documents by type, whichever process wrote them (``note``)."""

    def __init__(self, tmp_dir: Path, out_dir: str):
        self.docs_dir = Path(tmp_dir) / "docs"
        self.out_dir = out_dir.rstrip("/")
        self.docs_dir.mkdir(parents=True, exist_ok=True)
        self.written: set[str] = set()
        self.types: Counter[str] = Counter()

    def add(self, source: str, url: str | None, data: bytes, content_type: str = "",
            name_hint: str = "") -> dict:
        return self.note(store_document(self.docs_dir, self.out_dir, source, url, data, content_type, name_hint))

    def note(self, rec: dict) -> dict:
        """Count a stored document once: the figures depend on the set of documents, not on
        which process wrote one first."""
        if rec["path"] and rec["path"] not in self.written:
            self.written.add(rec["path"])
            self.types[rec["type"]] += 1
        return rec
