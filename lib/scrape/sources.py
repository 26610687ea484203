"""Expand `scrape.sources` entries into concrete items: local files, dataset records, links."""
from __future__ import annotations

import fnmatch
import glob
import gzip
import json
import os
from html.parser import HTMLParser
from pathlib import Path
from typing import Iterator
from urllib.parse import urljoin, urlsplit
from urllib.request import url2pathname

from lib.scrape.config import Source

_ASSETS = (".png", ".jpg", ".jpeg", ".gif", ".svg", ".ico", ".css", ".js", ".woff", ".woff2",
           ".ttf", ".zip", ".gz", ".tar", ".mp4", ".mp3", ".webp")


def display_path(path: Path) -> str:
    """Repo-relative when under the working directory, else as given (never made absolute)."""
    if path.is_absolute():
        try:
            return path.resolve().relative_to(Path.cwd().resolve()).as_posix()
        except ValueError:
            return path.as_posix()
    return path.as_posix()


def _matches(rel: str, include: list[str], exclude: list[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    if include and not any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in include):
        return False
    return not any(fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p) for p in exclude)


def local_files(src: Source, skipped: list[str] | None = None) -> Iterator[tuple[str, Path | None]]:
    """(display name, path or None when missing) for a path source, sorted, hidden files skipped.
    Files that the source's include/exclude patterns leave out are appended to ``skipped`` (by
    display name), so a pattern that drops more than meant (``*.html`` drops ``.htm``) shows."""
    skipped = [] if skipped is None else skipped
    raw = src.path if src.path is not None else url2pathname(urlsplit(src.url).path)
    given = Path(raw)
    if any(ch in raw for ch in "*?["):
        matches = sorted(glob.glob(raw, recursive=True))
        files = [Path(m) for m in matches if Path(m).is_file()]
        if not files:
            yield raw, None
        for f in files:
            if _matches(f.as_posix(), src.include, src.exclude):
                yield display_path(f), f
            else:
                skipped.append(display_path(f))
    elif given.is_dir():
        for dirpath, dirnames, filenames in os.walk(given):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            for name in sorted(filenames):
                if name.startswith("."):
                    continue
                f = Path(dirpath) / name
                if _matches(f.relative_to(given).as_posix(), src.include, src.exclude):
                    yield display_path(f), f
                else:
                    skipped.append(display_path(f))
    elif given.is_file():
        yield display_path(given), given
    else:
        yield display_path(given), None


def dataset_records(src: Source) -> Iterator[tuple[str, str | None, str | None, str | None]]:
    """(source name, url, text, failure reason) per record of the JSONL/Parquet dataset files."""
    pattern = src.dataset
    files = sorted(glob.glob(pattern, recursive=True)) if any(c in pattern for c in "*?[") else [pattern]
    files = [f for f in files if _matches(Path(f).as_posix(), src.include, src.exclude)]
    if not files:
        yield pattern, None, None, "not_found"
    for name in files:
        path = Path(name)
        if not path.is_file():
            yield display_path(path), None, None, "not_found"
            continue
        if name.endswith(".parquet"):
            yield from _parquet(path, src)
        else:
            yield from _jsonl(path, src)


def _record_fields(rec: object, src: Source) -> tuple[str | None, str | None, str | None]:
    if not isinstance(rec, dict):
        return None, None, "not_an_object"
    text, url = rec.get(src.text_field), rec.get(src.url_field)
    url = url if isinstance(url, str) and url else None
    if not isinstance(text, str) or not text.strip():
        return url, None, "no_text"
    return url, text, None


def _jsonl(path: Path, src: Source):
    opener = gzip.open if path.name.endswith(".gz") else open
    where = display_path(path)
    try:
        with opener(path, "rt", encoding="utf-8", errors="replace") as f:
            for lineno, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    yield f"{where}#L{lineno}", None, None, "invalid_json"
                    continue
                yield (f"{where}#L{lineno}",) + _record_fields(rec, src)
    except (OSError, EOFError):
        yield where, None, None, "unreadable"


def _parquet(path: Path, src: Source):
    where = display_path(path)
    try:
        import pyarrow.parquet as pq  # a dependency; imported lazily since most runs read no Parquet
    except ImportError:
        yield where, None, None, "parquet_needs_pyarrow"
        return
    try:
        table = pq.ParquetFile(path)
        row = 0
        for batch in table.iter_batches(columns=None):
            for rec in batch.to_pylist():
                row += 1
                yield (f"{where}#R{row}",) + _record_fields(rec, src)
    except Exception:  # noqa: BLE001 -- any pyarrow failure is a corrupt dataset file
        yield where, None, None, "unreadable"


class _Links(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.hrefs: list[str] = []
        self.base: str | None = None

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            href = dict(attrs).get("href")
            if href:
                self.hrefs.append(href)
        elif tag == "base" and self.base is None:
            self.base = dict(attrs).get("href")


def page_links(data: bytes, page_url: str, src: Source, site: str) -> list[str]:
    """Same-site http(s) links of a page, in page order, filtered by include/exclude globs."""
    parser = _Links()
    try:
        parser.feed(data.decode("utf-8", errors="replace"))
    except Exception:  # noqa: BLE001 -- a malformed page just yields fewer links
        pass
    base = urljoin(page_url, parser.base) if parser.base else page_url
    out = []
    for href in parser.hrefs:
        url = urljoin(base, href.strip()).split("#", 1)[0]
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or parts.netloc.lower() != site:
            continue
        if parts.path.lower().endswith(_ASSETS):
            continue
        if _matches(url, src.include, src.exclude):
            out.append(url)
    return out
