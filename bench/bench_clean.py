"""Benchmark: the clean stage's per-document work against bare extraction, in the same run.

For HTML and PDF separately and for the whole document set ("all": HTML, PDF, text, Markdown),
with 1 and 2 processes, measures documents/s and MB/s of
  - bare:  BeautifulSoup(html, "html.parser").get_text()  /  PyMuPDF page.get_text() per page
  - extract: our extraction and normalisation only (lib.clean.extract.extract)
  - clean: our full per-document work (decode, main-content or layout extraction, normalisation,
           every quality filter, MinHash signature) -- lib.clean.pipeline.process_bytes
on the same files, after a warm-up, and prints JSON with ratio = clean time / bare time, both
for wall time (throughput) and for CPU time summed over the worker processes (cost; steadier
on a busy machine). Rounds are interleaved and the best of each is kept.

    uv run python -m bench.bench_clean [--docs data/sample/docs] [--repeat 5] [--workers 1 2]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
from pathlib import Path

import pymupdf
from bs4 import BeautifulSoup

from collections import Counter

from lib.clean.config import CleanParams
from lib.clean.extract import extract
from lib.clean.pipeline import process_bytes
from lib.formats.registry import sniff

PARAMS = CleanParams()


def bare(item: tuple[str, bytes]) -> int:
    kind, data = item
    if kind == "html":
        return len(BeautifulSoup(data, "html.parser").get_text())
    if kind != "pdf":  # text and markdown: decoding is all a bare extractor does
        return len(data.decode("utf-8", errors="replace"))
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception:  # noqa: BLE001 -- the corrupt sample costs both sides the same
        return 0
    with doc:
        if doc.needs_pass:
            return 0
        return sum(len(page.get_text()) for page in doc)


def ours(item: tuple[str, bytes]) -> int:
    kind, data = item
    return process_bytes(data, {"type": kind, "source": "bench"}, PARAMS)["chars"]


def extract_only(item: tuple[str, bytes]) -> int:
    kind, data = item
    return len(extract(data, kind, None, PARAMS, Counter()).text)


def load(root: Path) -> dict[str, list[tuple[str, bytes]]]:
    docs: dict[str, list[tuple[str, bytes]]] = {"html": [], "pdf": [], "all": []}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        kind = sniff(data, path.name)
        if kind in docs:
            docs[kind].append((kind, data))
        if kind != "unknown":
            docs["all"].append((kind, data))
    return docs


def _cpu(job: tuple) -> float:
    """Run one document in whichever process and return the CPU seconds it took there."""
    name, item = job
    t0 = time.process_time()
    FNS[name](item)
    return time.process_time() - t0


FNS = {"bare": bare, "extract": extract_only, "clean": ours}


def timed(name: str, items, workers: int, pool) -> tuple[float, float]:
    """(wall seconds, CPU seconds summed over the processes that did the work)."""
    jobs = [(name, item) for item in items]
    t0 = time.perf_counter()
    if workers == 1:
        cpu = sum(map(_cpu, jobs))
    else:
        cpu = sum(pool.map(_cpu, jobs, chunksize=max(1, len(jobs) // (workers * 8))))
    return time.perf_counter() - t0, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--docs", default="data/sample/docs")
    ap.add_argument("--repeat", type=int, default=5, help="copies of the file set per measurement")
    ap.add_argument("--rounds", type=int, default=3, help="best of this many rounds")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    docs = load(Path(args.docs))
    report = {"docs": args.docs, "repeat": args.repeat, "rounds": args.rounds, "results": []}
    ctx = mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")
    for workers in args.workers:
        pool = ctx.Pool(workers) if workers > 1 else None
        for kind, files in docs.items():
            if not files:
                continue
            items = files * args.repeat
            mb = sum(len(d) for _, d in items) / 1e6
            for name in FNS:  # warm-up: imports, caches, pool start
                timed(name, files, workers, pool)
            wall = dict.fromkeys(FNS, float("inf"))
            cpu = dict.fromkeys(FNS, float("inf"))
            for _ in range(args.rounds):  # interleaved, best of: robust to a busy machine
                for name in FNS:
                    w, c = timed(name, items, workers, pool)
                    wall[name], cpu[name] = min(wall[name], w), min(cpu[name], c)
            row = {"kind": kind, "workers": workers, "docs": len(items), "mb": round(mb, 3)}
            for name in FNS:
                row[f"{name}_docs_per_s"] = round(len(items) / wall[name], 1)
                row[f"{name}_mb_per_s"] = round(mb / wall[name], 2)
            for name in ("extract", "clean"):
                row[f"ratio_{name}_over_bare"] = round(wall[name] / wall["bare"], 2)
                row[f"cpu_ratio_{name}_over_bare"] = round(cpu[name] / cpu["bare"], 2)
            report["results"].append(row)
        if pool is not None:
            pool.close()
            pool.join()
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
