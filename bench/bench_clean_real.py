"""Benchmark: the clean stage on real third-party documents, against third-party baselines in the
same run: poppler's pdftotext for PDFs and trafilatura for HTML.

The documents are tests/real_docs.py's test bed (Debian documentation packages; .ci/run installs
them) plus any --extra folders. Per kind (pdf, html) it prints JSON with
  - recall: our text's non-space characters (NFKC, as a multiset; every English document that
    extracted, kept or not) against the baseline's, three ways: raw; without the baseline's
    contents, list-of-figures and index pages (pages where most lines end in a page number:
    the pages issue 23 requires dropping, and nothing else); and against the baseline's body
    (those pages, lines that recur on half the pages, and dot-leader lines all left out);
    --per-doc pdf|html prints it per document, with the characters lost on contents pages, in
    running or leader lines and in the body, and the body's longest lost lines;
  - glued-word rate: tokens longer than 25 characters per 1,000 words, ours / baseline / bare;
  - nav strings left ("Up:", "Next:", "Previous:", "Return to" at a line start), U+FFFD left;
  - documents kept (ours) and documents the baseline returns text for;
  - throughput in MB/s of CPU time: bare extraction (PyMuPDF page.get_text() / BeautifulSoup
    get_text()), our extraction only, our whole clean, and the baseline; ratio = clean / bare;
  - structure (issue 23), measured here with the benchmark's own rules, not the cleaner's:
    code lines kept as lines (a line set in a typewriter font that `pdftotext -layout` also
    prints as a line, found as a whole line of our text; pdftotext -layout's own share beside
    it), bullets (a line pdftotext -layout prints after a bullet glyph) that start a `- `
    item of ours, look-alike characters left (U+2215/U+2044 anywhere, U+2212 and curly quotes in fenced
    code), dot-leader (table-of-contents) lines left, number-only headings, and on-topic
    documents (groups marked "hpc") rejected, with their reasons;
  - relevance: the score of on-topic ("hpc") and off-topic ("off") documents and how many of
    each the default clean.min_relevance keeps.

    uv run python -m bench.bench_clean_real [--extra DIR ...] [--per-doc pdf|html]
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
from lib.clean.extract import extract, reasons
from lib.clean.language import identifier
from lib.clean.pipeline import process_bytes
from tests.real_docs import GROUPS, files, read

P = CleanParams()
NAV = re.compile(r"^\W*(Up|Next|Previous|Prev):|^\s*Return to\b", re.M)
FENCE = re.compile(r"^\s*(```|~~~)")
# typewriter fonts by name, and the monospace flag bit, as the benchmark's own reference
TYPEWRITER = re.compile(r"mono|courier|cmtt|sftt|ectt|lmtt|txtt|inconsolata|consola|menlo", re.I)
LOOK_ANYWHERE = re.compile("[\u2215\u2044]")
LOOK_IN_CODE = re.compile("[\u2215\u2044\u2212\u2018\u2019\u201c\u201d]")
ASCII = str.maketrans({"\u2215": "/", "\u2044": "/", "\u2212": "-", "\u2018": "'", "\u2019": "'",
                       "\u201c": '"', "\u201d": '"', "\u2217": "*"})
LEADER = re.compile(r"(?:\.\s?){4,}\s*\d{1,4}\s*$|^\s*(?:\.\s?){4,}\s*$")
LEADER_END = re.compile(r"(?:\.\s?){4,}\s*$")
PAGE_REF = re.compile(r"[^\W\d_][^\d]*[\s,.]\d{1,4}\s*$")  # "Kernels . . 12", "palette, 184"
NUMBER_HEADING = re.compile(r"^#{1,6}\s+[\d\W]+$")
BULLET_LINE = re.compile(r"^\s*[\u2022\u25aa\u25a0\u25cf\u25e6\u2023\ue000-\uf8ff]\s+(\S.*)$")


def nonspace(text: str) -> Counter:
    return Counter(c for c in unicodedata.normalize("NFKC", text) if not c.isspace())


def recall(ours: Counter, ref: Counter) -> tuple[int, int]:
    return sum(min(ours[c], n) for c, n in ref.items()), sum(ref.values())


def glue(text: str) -> tuple[int, int]:
    words = text.split()
    return sum(1 for w in words if len(w) > 25), len(words)


def contents_free(text: str) -> str:
    """The baseline without its contents, list-of-figures and index pages (most of their lines
    end in a page number): the pages issue 23 requires a cleaner to drop, and nothing else."""
    return "\f".join(pg for pg in text.split("\f") if not numbered_page(pg))


def body(text: str) -> str:
    """The baseline's pages without what a cleaner is meant to drop: lines recurring on half
    the pages (running heads), dot-leader lines (with their page number or without it, where
    pdftotext printed it apart), and contents or index pages."""
    pages = contents_free(text).split("\f")
    counts = Counter(ln for pg in pages for ln in {" ".join(x.split()) for x in pg.split("\n")})
    common = {ln for ln, n in counts.items() if ln and len(pages) >= 3 and n >= len(pages) / 2}
    return "\n".join(ln for pg in pages for ln in pg.split("\n")
                     if " ".join(ln.split()) not in common and not LEADER.search(ln)
                     and not LEADER_END.search(ln))


def numbered_page(page: str) -> bool:
    """A contents, list-of-figures or index page: most of its lines end in a page number or in
    a dot leader (pdftotext prints a two-column index's leaders apart from their numbers)."""
    lines = [ln for ln in page.split("\n") if ln.strip()]
    ending = sum(1 for ln in lines if PAGE_REF.search(ln) or LEADER_END.search(ln))
    return len(lines) >= 10 and ending >= 0.4 * len(lines)


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


def same(line: str) -> str:
    """A line compared by its characters: look-alikes as ASCII, runs of spaces as one."""
    return " ".join(unicodedata.normalize("NFKC", line.translate(ASCII)).split())


def typewriter_lines(data: bytes) -> list[str]:
    """Lines of 4+ non-space characters set wholly in a typewriter font."""
    out = []
    with pymupdf.open(stream=data, filetype="pdf") as doc:
        for page in doc:
            for block in page.get_text("dict")["blocks"]:
                for line in block.get("lines", ()):
                    spans = [sp for sp in line["spans"] if sp["text"].strip()]
                    if spans and all(sp["flags"] & 8 or TYPEWRITER.search(sp["font"])
                                     for sp in spans):
                        text = same("".join(sp["text"] for sp in line["spans"]))
                        if len(text.replace(" ", "")) >= 4:
                            out.append(text)
    return out


def layout_text(data: bytes) -> str:
    return subprocess.run(["pdftotext", "-layout", "-enc", "UTF-8", "-", "-"], input=data,
                          capture_output=True).stdout.decode("utf-8", "replace")


def bullets(layout: str) -> list[str]:
    """The text of each bullet that pdftotext -layout prints after a bullet glyph (a symbol
    font's glyph included), up to the next column (a run of three spaces)."""
    out = []
    for ln in layout.split("\n"):
        m = BULLET_LINE.match(ln)
        if m:
            text = same(re.split(r"\s{3,}", m.group(1).strip())[0])
            if len(text) >= 4:
                out.append(text)
    return out


def bullets_as_items(marked: list[str], text: str) -> int:
    """How many of those bullets start a `- ` item of our text (indentation aside; compared
    without spaces, which pdftotext and MuPDF infer differently: "⟨cmd ⟩" / "⟨cmd⟩")."""
    items = ["".join(same(ln)[2:].split()) for ln in text.split("\n")
             if ln.lstrip().startswith("- ")]
    return sum(1 for b in marked if any(it.startswith("".join(b.split())) for it in items))


def structure(text: str, kind: str, data: bytes) -> Counter:
    """Look-alikes, leader lines and number-only headings left; for a PDF, its typewriter lines
    that pdftotext -layout prints as lines, and how many of those our text has as lines."""
    c = Counter()
    in_code = False
    for line in text.split("\n"):
        if FENCE.match(line):
            in_code = not in_code
            continue
        c["lookalikes_left"] += len((LOOK_IN_CODE if in_code else LOOK_ANYWHERE).findall(line))
        if not in_code:
            c["toc_lines_left"] += bool(LEADER.search(line))
            c["number_only_headings"] += bool(NUMBER_HEADING.match(line))
    if kind == "pdf":
        code = typewriter_lines(data)
        raw_layout = layout_text(data)
        layout = {same(ln) for ln in raw_layout.split("\n")}
        ours = {same(ln) for ln in text.split("\n")}
        marked = bullets(raw_layout)
        c["bullets"] += len(marked)
        c["bullets_as_items"] += bullets_as_items(marked, text)
        c["code_lines"] += len(code)
        c["code_lines_layout"] += sum(1 for ln in code if ln in layout)
        kept = sum(1 for ln in code if ln in layout and ln in ours)
        c["code_lines_ours"] += kept
        listed = sum(1 for ln in code if ln in layout)
        if listed >= 10:  # a document with listings: its own share, so small ones count too
            c["code_docs"] += 1
            c["code_docs_share_milli"] += round(1000 * kept / listed)
            c["code_docs_below_0.9"] += kept < 0.9 * listed
    return c


def collect(extra: list[str]) -> list[tuple[str, str, bool, bytes]]:
    docs = [(str(p), g.kind, g.english, read(p)) for n, g in GROUPS.items() for p in files(n)
            if g.kind in ("pdf", "html")]
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
        # text quality is measured on every English document that extracted (kept or not: the
        # TeX manuals of the bed are not HPC, and relevance, on by default, drops them), so
        # that two versions of the cleaner are compared on the same documents
        extracted = english and r["reason"] not in (*reasons(), "missing_raw")
        ours = r["text"] if extracted else ""
        a.update(docs=1, mb=len(data), english=english, kept=r["reason"] is None,
                 english_kept=english and r["reason"] is None,
                 foreign_rejected=not english and r["reason"] is not None,
                 baseline_nonempty=len(ref.split()) >= 50,
                 t_clean=t_clean, t_extract=t_extract, t_bare=t_bare, t_base=t_base)
        if extracted:
            ours_c = nonspace(ours)
            for name, ref_text in (("raw", ref), ("toc", contents_free(ref)), ("body", body(ref))):
                hit, total = recall(ours_c, nonspace(ref_text))
                a.update({f"rec_{name}_hit": hit, f"rec_{name}_total": total})
            for name, text in (("ours", ours), ("base", ref), ("bare", b)):
                long, words = glue(text)
                a.update({f"glue_{name}_long": long, f"glue_{name}_words": words})
            a.update(nav_ours=bool(NAV.search(ours)), nav_base=bool(NAV.search(ref)),
                     fffd_ours=ours.count("\ufffd") > 0)
        if english:
            a.update(structure(r.get("text") or "", kind, data))
        if TOPIC.get(path) == "hpc" and r["reason"] is not None:
            a["hpc_rejected"] += 1
            a[f"hpc_rejected:{r['reason']}"] += 1
    return {kind: report(a) for kind, a in acc.items()}


TOPIC = {str(p): g.topic for n, g in GROUPS.items() for p in files(n)}


def relevance_split() -> dict:
    """Relevance of on-topic and off-topic documents, and what the default threshold keeps."""
    scores: dict[str, list[float]] = {"hpc": [], "off": []}
    for name, g in GROUPS.items():
        if g.topic not in scores:
            continue
        for p in files(name):
            r = process_bytes(read(p), {"type": g.kind, "source": str(p)}, P)
            if r.get("relevance") is not None:
                scores[g.topic].append(r["relevance"])
    return {"min_relevance": getattr(P, "min_relevance", 0.0),
            **{t: {"docs": len(v), "kept_by_relevance": sum(x >= P.min_relevance for x in v),
                   "min": min(v, default=None), "max": max(v, default=None)}
               for t, v in scores.items()}}


def report(a: Counter) -> dict:
    def rate(name):
        return round(1000 * a[f"glue_{name}_long"] / max(1, a[f"glue_{name}_words"]), 2)
    mb = a["mb"] / 1e6
    return {
        "docs": a["docs"], "mb": round(mb, 2), "english": a["english"],
        "english_kept": a["english_kept"], "foreign": a["docs"] - a["english"],
        "foreign_rejected": a["foreign_rejected"], "baseline_text_docs": a["baseline_nonempty"],
        "recall_vs_baseline": round(a["rec_raw_hit"] / max(1, a["rec_raw_total"]), 3),
        "recall_vs_baseline_no_contents": round(a["rec_toc_hit"] / max(1, a["rec_toc_total"]), 3),
        "recall_vs_baseline_body": round(a["rec_body_hit"] / max(1, a["rec_body_total"]), 3),
        "glued_per_1000_words": {"ours": rate("ours"), "baseline": rate("base"), "bare": rate("bare")},
        "kept_docs_with_nav": {"ours": a["nav_ours"], "baseline": a["nav_base"]},
        "kept_docs_with_fffd": a["fffd_ours"],
        "cpu_mb_per_s": {k: round(mb / max(1e-9, a[f"t_{k}"]), 2)
                         for k in ("bare", "extract", "clean", "base")},
        "cpu_ratio_clean_over_bare": round(a["t_clean"] / max(1e-9, a["t_bare"]), 2),
        "cpu_ratio_extract_over_bare": round(a["t_extract"] / max(1e-9, a["t_bare"]), 2),
        "structure": {
            "code_lines_typewriter_in_layout": a["code_lines_layout"],
            "code_lines_kept_as_lines": round(a["code_lines_ours"] / max(1, a["code_lines_layout"]),
                                              3),
            "pdftotext_layout_share": round(a["code_lines_layout"] / max(1, a["code_lines"]), 3),
            "docs_with_listings": a["code_docs"],
            "code_lines_kept_as_lines_doc_mean": round(
                a["code_docs_share_milli"] / 1000 / max(1, a["code_docs"]), 3),
            "docs_below_0.9_of_code_lines": a["code_docs_below_0.9"],
            "bullets_in_layout": a["bullets"],
            "bullets_as_list_items": round(a["bullets_as_items"] / max(1, a["bullets"]), 3),
            "lookalikes_left": a["lookalikes_left"], "toc_lines_left": a["toc_lines_left"],
            "number_only_headings": a["number_only_headings"],
            "hpc_rejected": a["hpc_rejected"],
            "hpc_rejected_reasons": {k.split(":", 1)[1]: v for k, v in sorted(a.items())
                                     if k.startswith("hpc_rejected:")}},
    }


def lost_lines(ours: str, ref_body: str, top: int = 5) -> list[str]:
    """The longest lines of the baseline's body whose characters (spaces and look-alikes
    aside) do not occur as a run in our text: where recall is lost, to read."""
    flat = "".join(same(ours).split())
    lost = {same(ln) for ln in ref_body.split("\n")
            if len(ln.split()) >= 2 and "".join(same(ln).split()) not in flat}
    return sorted(lost, key=len, reverse=True)[:top]


DESIGNED_DROPS = ("boilerplate_chars_removed", "pdf_line_numbers_removed",
                  "pdf_duplicate_pages_removed", "pdf_running_lines_removed")


def per_doc(docs: list) -> list[dict]:
    """Recall per English document that extracted, three ways, with the characters lost split
    by what the baseline's own pages are (--per-doc): on contents/index pages, in running or
    dot-leader lines, and in the body; the body's longest lost lines beside them."""
    rows = []
    for path, kind, english, data in docs:
        r = process_bytes(data, {"type": kind, "source": path}, P)
        if not english or r["reason"] in (*reasons(), "missing_raw"):
            continue
        ref = baseline(kind, data)
        ours = nonspace(r["text"])
        miss, row = {}, {"doc": Path(path).name, "kind": kind, "reason": r["reason"]}
        for name, ref_text in (("raw", ref), ("no_contents", contents_free(ref)),
                               ("body", body(ref))):
            hit, total = recall(ours, nonspace(ref_text))
            miss[name] = total - hit
            row[f"recall_{name}"] = round(hit / max(1, total), 3)
            row[f"chars_{name}"] = [hit, total]
        row["lost_chars"] = {"contents_pages": miss["raw"] - miss["no_contents"],
                             "running_or_leader_lines": miss["no_contents"] - miss["body"],
                             "body": miss["body"]}
        # what the cleaner itself says it dropped by design (its own counters, beside the
        # bench's attribution, not subtracted from it)
        row["cleaner_dropped"] = {k: r["stats"].get(k, 0) for k in DESIGNED_DROPS}
        row["body_lines_lost"] = lost_lines(r["text"], body(ref))
        rows.append(row)
    return sorted(rows, key=lambda row: -row["lost_chars"]["body"])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--extra", nargs="*", default=[], help="more folders of PDFs and HTML pages")
    ap.add_argument("--per-doc", choices=("pdf", "html"), default=None,
                    help="recall per document of this kind, and where it is lost (no timings)")
    args = ap.parse_args()
    identifier()  # the language model loads once, outside the timings
    docs = collect(args.extra)
    if args.per_doc:
        rows = per_doc([d for d in docs if d[1] == args.per_doc])
        for row in rows:
            print(json.dumps(row, ensure_ascii=False))
        print(json.dumps({"docs": len(rows), **{
            f"recall_{m}": round(sum(r[f"chars_{m}"][0] for r in rows)
                                 / max(1, sum(r[f"chars_{m}"][1] for r in rows)), 3)
            for m in ("raw", "no_contents", "body")}}))
        return
    t0 = time.perf_counter()
    results = measure(docs)
    print(json.dumps({"extra": args.extra, "seconds": round(time.perf_counter() - t0, 1),
                      "results": results, "relevance": relevance_split()}, indent=2))


if __name__ == "__main__":
    main()
