"""Conditional re-fetch: remember ETag/Last-Modified per URL and the body by content hash.

Lives outside the DVC output (DVC clears outputs before a stage runs). Entries are named by a
hash of the URL and bodies by a hash of their content, never by a path taken from a URL.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from lib.core.io import atomic_write_bytes, atomic_write_text


class HttpCache:
    def __init__(self, root: str | Path):
        self.root = Path(root)

    def _entry(self, url: str) -> Path:
        return self.root / "urls" / (hashlib.sha256(url.encode("utf-8")).hexdigest() + ".json")

    def _load(self, url: str) -> dict | None:
        try:
            return json.loads(self._entry(url).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None

    def validators(self, url: str) -> dict[str, str]:
        entry = self._load(url)
        if not entry or not (self.root / "blobs" / entry["sha256"]).exists():
            return {}
        headers = {}
        if entry.get("etag"):
            headers["If-None-Match"] = entry["etag"]
        if entry.get("last_modified"):
            headers["If-Modified-Since"] = entry["last_modified"]
        return headers

    def body(self, url: str) -> tuple[bytes, str] | None:
        entry = self._load(url)
        if not entry:
            return None
        try:
            data = (self.root / "blobs" / entry["sha256"]).read_bytes()
        except OSError:
            return None
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            return None
        return data, entry.get("content_type", "")

    def store(self, url: str, headers: dict[str, str], data: bytes, content_type: str) -> None:
        etag, modified = headers.get("etag"), headers.get("last-modified")
        if not etag and not modified:
            return
        sha = hashlib.sha256(data).hexdigest()
        blob = self.root / "blobs" / sha
        if not blob.exists():
            atomic_write_bytes(blob, data)
        entry = {"url": url, "sha256": sha, "etag": etag, "last_modified": modified,
                 "content_type": content_type}
        atomic_write_text(self._entry(url), json.dumps(entry, sort_keys=True))
