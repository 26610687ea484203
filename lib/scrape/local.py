"""Local files and dataset records into the raw store on the data engine (``lib/engine``): the
stage's process lists the items in source order, the workers read, hash and store them, and the
records come back in that order, so the manifest is the same bytes on any engine.

Workers write into the stage's temporary output folder by the same relative path the stage uses:
on a Ray cluster every node must see the repository at the same path, as for clean and pack.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lib.engine import Engine, Work
from lib.scrape.store import record, store_document

# items per task: a task costs a few ms of scheduling, a small file is read and hashed in less
BATCH = 8


@dataclass(frozen=True)
class Item:
    """One source item to store: a local file (``path``) or a dataset record's text (``text``)."""
    key: tuple[int, int]   # (source index, item index): the manifest's order
    name: str              # the manifest's `source`
    url: str | None = None
    path: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class StoreTo:
    docs_dir: str
    out_dir: str
    max_bytes: int


def store_item(item: Item, to: StoreTo) -> tuple[tuple[int, int], dict]:
    """Read (a file), check the size cap, hash, sniff and store; never raises on a bad file."""
    docs = Path(to.docs_dir)
    if item.text is not None:
        data = item.text.encode("utf-8")
        if len(data) > to.max_bytes:
            return item.key, record(item.name, item.url, nbytes=len(data), reason="too_large")
        return item.key, store_document(docs, to.out_dir, item.name, item.url, data, "", name_hint=".txt")
    path = Path(item.path)
    try:
        size = path.stat().st_size
        if size > to.max_bytes:
            return item.key, record(item.name, item.url, nbytes=size, reason="too_large")
        data = path.read_bytes()
    except OSError:
        return item.key, record(item.name, item.url, reason="unreadable")
    return item.key, store_document(docs, to.out_dir, item.name, item.url, data, name_hint=path.name)


def store_items(engine: Engine, items, to: StoreTo):
    """(key, manifest record) per item, in input order, the work spread over ``engine``."""
    return engine.map_ordered(Work(store_item, to, batch=BATCH), items)
