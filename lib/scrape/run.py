"""The scrape stage's work: expand sources, fetch in parallel, store by hash, write the manifest."""
from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Iterable, Iterator
from urllib.parse import urlsplit

from tqdm import tqdm

from lib.core.io import atomic_path, iter_jsonl, write_jsonl
from lib.engine import Engine
from lib.engine.local import LocalEngine
from lib.scrape.cache import HttpCache
from lib.scrape.config import ScrapeParams, Source
from lib.scrape.http import Fetcher, FetchResult, normalise_url
from lib.formats.registry import sniff
from lib.scrape.local import Item, StoreTo, store_items
from lib.scrape.sources import dataset_records, local_files, page_links
from lib.scrape.store import RawStore, record
from lib.core.progress import progress


class _SafeFetcher(Fetcher):
    """A fetch that cannot raise: an unexpected error becomes the item's recorded reason."""

    def fetch(self, url: str) -> FetchResult:
        try:
            return super().fetch(url)
        except Exception as err:  # noqa: BLE001 -- one bad URL must not stop the run
            return FetchResult(url, None, reason=f"error_{type(err).__name__}")


class _Run:
    def __init__(self, params: ScrapeParams, store: RawStore, pool: ThreadPoolExecutor, bar: tqdm):
        self.p, self.store, self.pool, self.bar = params, store, pool, bar
        self.fetcher = _SafeFetcher(params, HttpCache(params.cache_dir) if params.cache_dir else None)
        self.records: list[tuple[tuple[int, int], dict]] = []
        self.not_modified = 0
        self.skipped: dict[str, list[str]] = {}  # per path source: files its patterns left out

    def add(self, key: tuple[int, int], rec: dict) -> None:
        self.records.append((key, rec))
        self.bar.update(1)

    def add_fetched(self, key: tuple[int, int], res: FetchResult) -> None:
        if res.ok:
            self.not_modified += res.not_modified
            rec = self.store.add(res.url, res.final_url, res.data, res.content_type)
        else:
            rec = record(res.url, res.final_url, reason=res.reason)
        self.add(key, rec)

    def local(self, idx: int, src: Source) -> Iterator[Item]:
        """The files of a path (or file://) source to store; a missing one is recorded here."""
        skipped = self.skipped.setdefault(f"sources[{idx}]: {src.path or src.url}", [])
        for j, (name, path) in enumerate(local_files(src, skipped)):
            url = src.url  # a file:// URL source keeps its URL; a path source has none
            if path is None:
                self.add((idx, j), record(name, url, reason="not_found"))
            else:
                yield Item((idx, j), name, url, path=str(path))

    def dataset(self, idx: int, src: Source) -> Iterator[Item]:
        for j, (name, url, text, reason) in enumerate(dataset_records(src)):
            if reason:
                self.add((idx, j), record(name, url, reason=reason))
            else:
                yield Item((idx, j), name, url, text=text)

    def stored(self, engine: Engine, items: Iterable[Item]) -> None:
        to = StoreTo(str(self.store.docs_dir), self.store.out_dir, self.p.max_bytes)
        for key, rec in store_items(engine, items, to):
            self.add(key, self.store.note(rec))

    def urls(self, items: list[tuple[tuple[int, int], str]]) -> None:
        """Fetch in parallel, a bounded window at a time, so only a few bodies are in memory."""
        window = self.p.workers * 4
        for i in range(0, len(items), window):
            batch = items[i:i + window]
            for (key, _), res in zip(batch, self.pool.map(self.fetcher.fetch, [u for _, u in batch])):
                self.add_fetched(key, res)

    def crawl(self, idx: int, src: Source) -> None:
        """Breadth-first, same-site; each level fetched in parallel, kept in discovery order."""
        start = normalise_url(src.crawl)
        site = urlsplit(start).netloc
        frontier, seen, count = [start], {start}, 0
        for depth in range(src.max_depth + 1):
            batch = frontier[: src.max_pages - count]
            if not batch:
                break
            results = list(self.pool.map(self.fetcher.fetch, batch))
            frontier = []
            for res in results:
                self.add_fetched((idx, count), res)
                count += 1
                if res.ok and depth < src.max_depth and sniff(res.data, "", res.content_type) == "html":
                    for link in page_links(res.data, res.final_url or res.url, src, site):
                        link = normalise_url(link)
                        if link not in seen:
                            seen.add(link)
                            frontier.append(link)


def scrape(params: ScrapeParams, engine: Engine | None = None) -> tuple[dict, list[dict]]:
    """Run every source; return (metrics, manifest records). Outputs land in params.out_dir.
    Local files and dataset records are stored on ``engine`` (default: ``params.workers`` local
    processes); web pages are fetched here, by threads, politely."""
    t0 = time.perf_counter()
    engine = engine or LocalEngine(params.workers)
    with atomic_path(params.out_dir) as tmp, ThreadPoolExecutor(params.workers) as pool, \
            progress(desc="scrape", unit="doc", dynamic_ncols=True) as bar:
        run = _Run(params, RawStore(tmp, params.out_dir), pool, bar)
        run.stored(engine, (item for idx, src in enumerate(params.sources) for item in _items(run, idx, src)))
        urls = []
        for idx, src in enumerate(params.sources):
            if src.kind == "url" and not _is_file_url(src):
                urls.append(((idx, 0), src.url))
            elif src.kind == "crawl":
                run.crawl(idx, src)
        run.urls(urls)
        manifest = [rec for _, rec in sorted(run.records, key=lambda kr: kr[0])]
        write_jsonl(Path(tmp) / "manifest.jsonl", manifest)
        write_jsonl(Path(tmp) / "skipped.jsonl", [{"source": label, "path": name, "reason": "include_exclude"}
                                                  for label, names in run.skipped.items() for name in names])
    return _metrics(manifest, run, time.perf_counter() - t0), manifest


def _is_file_url(src: Source) -> bool:
    return src.kind == "url" and src.url.lower().startswith("file:")


def _items(run: _Run, idx: int, src: Source) -> Iterator[Item]:
    if src.kind == "path" or _is_file_url(src):
        return run.local(idx, src)
    if src.kind == "dataset":
        return run.dataset(idx, src)
    return iter(())


def _metrics(manifest: list[dict], run: _Run, seconds: float) -> dict:
    ok = [r for r in manifest if r["status"] == "ok"]
    return {
        "items": len(manifest),
        "ok": len(ok),
        "failed": len(manifest) - len(ok),
        "failed_by_reason": dict(sorted(Counter(r["reason"] for r in manifest if r["reason"]).items())),
        "bytes": sum(r["bytes"] for r in ok),
        "unique_docs": len(run.store.written),
        "docs_by_type": dict(sorted(run.store.types.items())),
        "not_modified": run.not_modified,
        # per local source, the files its include/exclude patterns left out (names: skipped.jsonl)
        "skipped_by_patterns": {label: len(names) for label, names in run.skipped.items()},
        "seconds": round(seconds, 3),
    }


def skipped_kinds(out_dir: str, label: str) -> str:
    """'.htm 10, .shtml 2': the extensions of what a source's patterns skipped, most first."""
    exts = Counter(Path(rec["path"]).suffix.lower() or "(none)"
                   for _, rec in iter_jsonl(Path(out_dir) / "skipped.jsonl") if rec["source"] == label)
    return ", ".join(f"{ext} {n}" for ext, n in exts.most_common())
