"""Benchmark: the clean stage on real third-party documents, against third-party baselines in the
same run: poppler's pdftotext for PDFs and trafilatura for HTML.

The documents are tests/real_docs.py's test bed (Debian documentation packages; .ci/run installs
them) plus any --extra folders. Per kind (pdf, html) it prints JSON with
  - recall: our kept text's non-space characters (NFKC, as a multiset) against the baseline's,
    both raw and against the baseline's body (its lines that recur on half the pages removed);
  - glued-word rate: tokens longer than 25 characters per 1,000 words, ours / baseline / bare;
  - nav strings left ("Up:", "Next:", "Previous:", "Return to" at a line start), U+FFFD left;
  - documents kept (ours) and documents the baseline returns text for;
  - throughput in MB/s of CPU time: bare extraction (PyMuPDF page.get_text() / BeautifulSoup
    get_text()), our extraction only, our whole clean, and the baseline; ratio = clean / bare.

    uv run python -m bench.bench_clean_real [--extra DIR ...]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import time
import unicodedata
from collections import Counter
from pathlib import Path

import pymupdf
import trafilatura
from bs4 import BeautifulSoup

from lib.clean.config import CleanParams
from lib.clean.extract import extract
from lib.clean.language import identifier
from lib.clean.pipeline import process_bytes
from tests.real_docs import GROUPS, files, read

P = CleanParams()
NAV = re.compile(r"^\W*(Up|Next|Previous|Prev):|^\s*Return to\b", re.M)


def nonspace(text: str) -> Counter:
    return Counter(c for c in unicodedata.normalize("NFKC", text) if not c.isspace())


def recall(ours: Counter, ref: Counter) -> tuple[int, int]:
    return sum(min(ours[c], n) for c, n in ref.items()), sum(ref.values())


def glue(text: str) -> tuple[int, int]:
    words = text.split()
    return sum(1 for w in words if len(w) > 25), len(words)


def body(text: str) -> str:
    pages = text.split("\f")
    counts = Counter(ln for pg in pages for ln in {" ".join(x.split()) for x in pg.split("\n")})
    common = {ln for ln, n in counts.items() if ln and len(pages) >= 3 and n >= len(pages) / 2}
    return "\n".join(ln for pg in pages for ln in pg.split("\n") if " ".join(ln.split()) not in common)


def cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed(fn, *args):
    t0 = cpu()
    out = fn(*args)
    return out, cpu() - t0


def bare(kind: str, data: bytes) -> str:
    if kind == "html":
        return BeautifulSoup(data, "html.parser").get_text()
    with pymupdf.open(stream=data, filetype="pdf") as doc:
        return "\f".join(page.get_text() for page in doc)


def baseline(kind: str, data: bytes) -> str:
    if kind == "html":
        return trafilatura.extract(data.decode("utf-8", "replace")) or ""
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=data, capture_output=True)
    return out.stdout.decode("utf-8", "replace")


def collect(extra: list[str]) -> list[tuple[str, str, bool, bytes]]:
    docs = [(str(p), g.kind, g.english, read(p)) for n, g in GROUPS.items() for p in files(n)]
    for folder in extra:
        for p in sorted(Path(folder).rglob("*")):
            kind = "pdf" if p.suffix == ".pdf" else "html" if p.suffix in (".htm", ".html") else None
            if kind:
                docs.append((str(p), kind, True, p.read_bytes()))
    return docs


def measure(docs: list) -> dict[str, dict]:
    acc: dict[str, Counter] = {}
    for path, kind, english, data in docs:
        a = acc.setdefault(kind, Counter())
        r, t_clean = timed(process_bytes, data, {"type": kind, "source": path}, P)
        _, t_extract = timed(extract, data, kind, None, P, Counter())
        b, t_bare = timed(bare, kind, data)
        ref, t_base = timed(baseline, kind, data)
        ours = r["text"] if r["reason"] is None else ""
        a.update(docs=1, mb=len(data), english=english, kept=r["reason"] is None,
                 english_kept=english and r["reason"] is None,
                 foreign_rejected=not english and r["reason"] is not None,
                 baseline_nonempty=len(ref.split()) >= 50,
                 t_clean=t_clean, t_extract=t_extract, t_bare=t_bare, t_base=t_base)
        if r["reason"] is None:
            ours_c = nonspace(ours)
            for name, ref_text in (("raw", ref), ("body", body(ref))):
                hit, total = recall(ours_c, nonspace(ref_text))
                a.update({f"rec_{name}_hit": hit, f"rec_{name}_total": total})
            for name, text in (("ours", ours), ("base", ref), ("bare", b)):
                long, words = glue(text)
                a.update({f"glue_{name}_long": long, f"glue_{name}_words": words})
            a.update(nav_ours=bool(NAV.search(ours)), nav_base=bool(NAV.search(ref)),
                     fffd_ours=ours.count("\ufffd") > 0)
    return {kind: report(a) for kind, a in acc.items()}


def report(a: Counter) -> dict:
    def rate(name):
        return round(1000 * a[f"glue_{name}_long"] / max(1, a[f"glue_{name}_words"]), 2)
    mb = a["mb"] / 1e6
    return {
        "docs": a["docs"], "mb": round(mb, 2), "english": a["english"],
        "english_kept": a["english_kept"], "foreign": a["docs"] - a["english"],
        "foreign_rejected": a["foreign_rejected"], "baseline_text_docs": a["baseline_nonempty"],
        "recall_vs_baseline": round(a["rec_raw_hit"] / max(1, a["rec_raw_total"]), 3),
        "recall_vs_baseline_body": round(a["rec_body_hit"] / max(1, a["rec_body_total"]), 3),
        "glued_per_1000_words": {"ours": rate("ours"), "baseline": rate("base"), "bare": rate("bare")},
        "kept_docs_with_nav": {"ours": a["nav_ours"], "baseline": a["nav_base"]},
        "kept_docs_with_fffd": a["fffd_ours"],
        "cpu_mb_per_s": {k: round(mb / max(1e-9, a[f"t_{k}"]), 2)
                         for k in ("bare", "extract", "clean", "base")},
        "cpu_ratio_clean_over_bare": round(a["t_clean"] / max(1e-9, a["t_bare"]), 2),
        "cpu_ratio_extract_over_bare": round(a["t_extract"] / max(1e-9, a["t_bare"]), 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--extra", nargs="*", default=[], help="more folders of PDFs and HTML pages")
    args = ap.parse_args()
    identifier()  # the language model loads once, outside the timings
    docs = collect(args.extra)
    t0 = time.perf_counter()
    results = measure(docs)
    print(json.dumps({"extra": args.extra, "seconds": round(time.perf_counter() - t0, 1),
                      "results": results}, indent=2))


if __name__ == "__main__":
    main()
