"""PDF to text with PyMuPDF: MuPDF's words and spaces, our layout clean-up on top (see
pdf_lines for a page, pdf_paragraphs for the prose). Across pages: running headers and footers
(a top or bottom line on most pages), verbatim repeated pages and contents/index pages (toc.py)
are removed; a document whose pages are mostly landscape is a slide deck (bullets, judged as a
deck by the filters). Pages with no text layer are counted as scanned; encrypted and corrupt
files are reported.
"""
from __future__ import annotations

import re
from collections import Counter

import pymupdf

from lib.clean.pdf_lines import Line, page_lines, reading_order
from lib.clean.pdf_paragraphs import append, body_size, paragraphs, resolve_hyphens
from lib.clean.toc import is_toc_page, toc_run
from lib.clean.types import Extracted

# The counters this module adds to a document's stats (lib/clean/counters.py gathers them).
COUNTERS = ("pdf_duplicate_pages_removed", "pdf_pages", "pdf_running_lines_removed",
            "pdf_scanned_pages", "pdf_toc_lines_removed", "pdf_toc_pages")
_DIGITS = re.compile(r"\d+")
_DECK_ASPECT = 1.2   # a page this much wider than tall is a slide (4:3 is 1.33, 16:9 is 1.78)


def _edge_key(ln: Line, height: float) -> str | None:
    """A top or bottom line, digits masked ("Page 3 of 9"), as a running-header candidate."""
    if ln.y1 < height * 0.12 or ln.y0 > height * 0.88:
        return _DIGITS.sub("#", ln.text.lower())
    return None


def _read_pages(doc, stats: Counter) -> tuple[list[tuple[float, list[Line]]], int, bool]:
    """(page height, lines in reading order) per page, the number of image-only pages, and
    whether the document is a slide deck (most pages landscape)."""
    pages, scanned, landscape = [], 0, 0
    for page in doc:
        rect = page.rect  # a property that asks MuPDF each time: once per page
        lines = page_lines(page, stats, rect)
        if not lines and page.get_images(full=False):
            scanned += 1
        slide = rect.width > _DECK_ASPECT * rect.height
        landscape += slide
        pages.append((rect.height, reading_order(lines, rect.width, rect.height, stats, slide)))
    return pages, scanned, landscape > len(pages) / 2


def _running_keys(pages: list[tuple[float, list[Line]]], share: float, min_pages: int) -> set[str]:
    if len(pages) < min_pages:
        return set()
    counts = Counter(k for h, lines in pages for k in {_edge_key(ln, h) for ln in lines} if k)
    return {k for k, n in counts.items() if n >= share * len(pages)}


def _body_pages(pages, repeated: set[str], stats: Counter) -> list[list[Line]]:
    """Pages without their running lines; a page repeated verbatim (a duplicated scan or print
    glitch) is kept once."""
    out, seen = [], set()
    for h, lines in pages:
        kept = [ln for ln in lines if _edge_key(ln, h) not in repeated]
        stats["pdf_running_lines_removed"] += len(lines) - len(kept)
        texts = [ln.text for ln in kept]
        if is_toc_page(texts):
            stats["pdf_toc_pages"] += 1
            continue
        run = toc_run(texts)
        if run:
            stats["pdf_toc_lines_removed"] += len(run)
            kept = kept[:run.start] + kept[run.stop:]
        key = hash(tuple(ln.text for ln in kept))
        if key in seen:
            stats["pdf_duplicate_pages_removed"] += 1
            continue
        seen.add(key)
        out.append(kept)
    return out


def extract_pdf(data: bytes, stats: Counter, repeat_share: float = 0.5,
                min_pages: int = 3) -> Extracted:
    try:
        doc = pymupdf.open(stream=data, filetype="pdf")
    except Exception:  # noqa: BLE001 -- MuPDF raises several types for broken files
        return Extracted("", "", reason="pdf_corrupt")
    with doc:
        if doc.needs_pass and not doc.authenticate(""):
            return Extracted("", "", reason="pdf_encrypted")
        if doc.page_count == 0:
            return Extracted("", "", reason="pdf_corrupt")
        title = (doc.metadata or {}).get("title") or ""
        try:
            pages, scanned, deck = _read_pages(doc, stats)
        except Exception:  # noqa: BLE001
            return Extracted(title, "", reason="pdf_corrupt")
    stats["pdf_pages"] += len(pages)
    stats["pdf_scanned_pages"] += scanned
    pages = [(h, lines) for h, lines in pages if lines]
    if not pages:
        return Extracted(title, "", reason="pdf_scanned" if scanned else "empty")
    body = _body_pages(pages, _running_keys(pages, repeat_share, min_pages), stats)
    size = body_size(body)
    paras: list[str] = []
    for lines in body:
        for para in paragraphs(lines, size, stats, deck):
            append(paras, para, stats, deck)
    text = resolve_hyphens("\n\n".join(paras), stats)
    return Extracted(title or (paras[0][:200] if paras else ""), text, deck=deck)
