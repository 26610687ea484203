"""The clean stage's work: extract, normalise and filter in worker processes (streaming, in
manifest order), then exact and near-duplicate removal in the parent; docs, rejects, metrics."""
from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Iterable, Iterator

from lib.core.progress import progress

from lib.clean.boilerplate import strip_repeats
from lib.clean.config import CleanParams
from lib.clean.counters import declared as declared_counters
from lib.clean.dedup import NearDuplicateIndex, minhash, text_hash
from lib.clean.extract import extract, read_raw
from lib.clean.extract import reasons as extract_reasons
from lib.clean.filters import REASONS as FILTER_REASONS
from lib.clean.filters import Doc, first_failure
from lib.clean.language import identifier as language_model
from lib.clean.relevance import relevance, term_weights
from lib.clean.text import prose
from lib.core.errors import UserError
from lib.core.io import JsonlWriter, iter_jsonl
from lib.engine import Engine, Work
from lib.engine.local import LocalEngine

# The boilerplate step's counters (see lib/clean/counters.py).
COUNTERS = ("boilerplate_chars_removed", "boilerplate_docs", "boilerplate_lines_removed")


def reasons() -> tuple[str, ...]:
    """Every reason a document can be dropped for, in pipeline order; metrics list each (0
    included) so a rule that never fired is visible. The filters' reasons come from
    filters.FILTERS, extraction's from extract.reasons (the formats' own among them)."""
    return ("missing_raw", *extract_reasons(), *FILTER_REASONS, "duplicate_exact", "duplicate_near")


def process(task: dict, p: CleanParams) -> dict:
    """Everything that needs only one document. Returns a result dict (picklable)."""
    if task.get("skip"):
        return _result(task, reason=task["skip"])
    data = read_raw(task["path"])
    if data is None:
        return _result(task, reason="missing_raw")
    return process_bytes(data, task, p)


def _result(task: dict, **kw) -> dict:
    out = {"source": task.get("source"), "type": task.get("type"), "bytes": task.get("bytes") or 0,
           "stats": Counter(), "chars": 0, "words": 0, "reason": None, "detail": None}
    out.update(kw)
    return out


def process_bytes(data: bytes, task: dict, p: CleanParams) -> dict:
    """Extract, normalise, strip repeated lines, filter and sign one document given its bytes."""
    out = _result(task)
    stats = out["stats"]
    try:
        got = extract(data, task["type"], task.get("content_type"), p, stats)
    except Exception as err:  # noqa: BLE001 -- one bad document must not stop the run
        out["reason"], out["detail"] = "extract_error", f"{type(err).__name__}: {err}"[:200]
        return out
    if got.reason:
        out["reason"] = got.reason
        return out
    text, lines_removed, chars_removed = strip_repeats(got.text)
    if lines_removed:
        stats.update(boilerplate_docs=1, boilerplate_lines_removed=lines_removed,
                     boilerplate_chars_removed=chars_removed)
    body = prose(text)
    doc = Doc(text, body, got.link_chars, chars_removed, relevance(text, _terms(p)), got.deck)
    out.update(title=got.title, text=text, chars=len(text), words=doc.total_words,
               relevance=doc.relevance)
    failed = first_failure(doc, p)
    if failed:
        out["reason"], out["detail"] = failed
        return out
    out["hash"] = text_hash(text)
    out["signature"] = minhash(text, p.shingle_size, p.minhash_perm, p.minhash_seed)
    return out


_TERMS: dict[tuple, dict[str, float]] = {}


def _terms(p: CleanParams) -> dict[str, float]:
    key = (tuple(p.domain_terms), tuple(p.context_terms), p.context_weight)
    if key not in _TERMS:
        _TERMS[key] = term_weights(*key)
    return _TERMS[key]


def _tasks(manifest: Path) -> Iterator[dict]:
    seen: set[str] = set()
    for _, rec in iter_jsonl(manifest):
        if rec.get("status") != "ok" or not rec.get("path"):
            continue
        task = {k: rec.get(k) for k in ("path", "type", "content_type", "bytes", "sha256")}
        task["source"] = rec.get("url") or rec["source"]
        if rec.get("sha256") in seen:  # byte-identical to an earlier item: no need to extract it
            task["skip"] = "duplicate_exact"
        seen.add(rec.get("sha256"))
        yield task


def _worker_setup(p: CleanParams) -> CleanParams:
    language_model()  # the language model, loaded once per worker process
    return p


def _results(tasks: Iterable[dict], p: CleanParams, engine: Engine) -> Iterator[dict]:
    # loaded here first: forked local workers inherit it rather than loading it each
    language_model()
    yield from engine.map_ordered(Work(process, p, _worker_setup, batch=4), tasks)


class _Deduplicator:
    """Exact then near-duplicate check, in arrival (manifest) order: the first copy is kept."""

    def __init__(self, p: CleanParams):
        self.hashes: set[str] = set()
        self.near = NearDuplicateIndex(p.minhash_perm, p.lsh_bands, p.near_dup_threshold)
        self.sources: list[str] = []  # of kept documents, by near-index position

    def check(self, r: dict) -> tuple[str | None, str | None]:
        if r["hash"] in self.hashes:
            return "duplicate_exact", None
        hit = self.near.query_insert(r["signature"])
        if hit is not None:
            return "duplicate_near", f"{hit[1]:.3f} similar to {self.sources[hit[0]]}"
        self.hashes.add(r["hash"])
        self.sources.append(r["source"])
        return None, None


def clean(p: CleanParams, engine: Engine | None = None) -> dict:
    """The clean stage on ``engine`` (default: ``p.workers`` local processes); the same bytes on any."""
    engine = engine or LocalEngine(p.workers)
    manifest = Path(p.raw_dir) / "manifest.jsonl"
    if not manifest.exists():
        raise UserError(f"{manifest}: not found; run the scrape stage first (dvc repro scrape)")
    t0 = time.perf_counter()
    m = Counter(dict.fromkeys(("docs_in", "docs_kept", "bytes_in", "chars_in", "words_in",
                               "chars_out", "words_out"), 0))
    rules = Counter(dict.fromkeys(declared_counters(), 0))
    dropped = Counter(dict.fromkeys(reasons(), 0))
    dedup = _Deduplicator(p)
    with JsonlWriter(Path(p.out_dir) / "docs.jsonl") as docs, \
            JsonlWriter(Path(p.out_dir) / "rejects.jsonl") as rejects:
        for r in progress(_results(_tasks(manifest), p, engine), desc="clean", unit="doc"):
            m.update(docs_in=1, bytes_in=r["bytes"], chars_in=r["chars"], words_in=r["words"])
            rules.update(r["stats"])
            reason, detail = (r["reason"], r["detail"]) if r["reason"] else dedup.check(r)
            if reason is not None:
                dropped[reason] += 1
                rejects.write({"source": r["source"], "reason": reason, "detail": detail,
                               "type": r["type"], "chars": r["chars"], "words": r["words"],
                               "relevance": r.get("relevance")})
                continue
            m.update(docs_kept=1, chars_out=r["chars"], words_out=r["words"])
            docs.write({"id": r["hash"][:16], "source": r["source"], "title": r["title"],
                        "text": r["text"], "type": r["type"], "chars": r["chars"],
                        "words": r["words"], "relevance": r["relevance"]})
    return {**dict(sorted(m.items())), "dropped": dict(sorted(dropped.items())),
            "dropped_total": sum(dropped.values()), "rules": dict(sorted(rules.items())),
            "rules_not_fired": sorted(k for k, v in {**dropped, **rules}.items() if v == 0),
            "seconds": round(time.perf_counter() - t0, 3), "workers": p.workers}
