"""PDF to text with PyMuPDF: MuPDF's words and spaces, our layout clean-up on top (see
pdf_lines for a page, pdf_paragraphs for the prose). Across pages: running headers and footers
(a top or bottom line on most pages) and verbatim repeated pages are removed. Pages with no text
layer are counted as scanned; encrypted and corrupt files are reported.
"""
from __future__ import annotations

import re
from collections import Counter

import pymupdf

from lib.clean.pdf_lines import Line, page_lines, reading_order
from lib.clean.pdf_paragraphs import append, body_size, paragraphs, resolve_hyphens
from lib.clean.types import Extracted

# The counters this module adds to a document's stats (lib/clean/counters.py gathers them).
COUNTERS = ("pdf_duplicate_pages_removed", "pdf_pages", "pdf_running_lines_removed",
            "pdf_scanned_pages")
_DIGITS = re.compile(r"\d+")


def _edge_key(ln: Line, height: float) -> str | None:
    """A top or bottom line, digits masked ("Page 3 of 9"), as a running-header candidate."""
    if ln.y1 < height * 0.12 or ln.y0 > height * 0.88:
        return _DIGITS.sub("#", ln.text.lower())
    return None


def _read_pages(doc, stats: Counter) -> tuple[list[tuple[float, list[Line]]], int]:
    """(page height, lines in reading order) per page, and the number of image-only pages."""
    pages, scanned = [], 0
    for page in doc:
        rect = page.rect  # a property that asks MuPDF each time: once per page
        lines = page_lines(page, stats, rect)
        if not lines and page.get_images(full=False):
            scanned += 1
        pages.append((rect.height, reading_order(lines, rect.width, rect.height, stats)))
    return pages, scanned


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
            pages, scanned = _read_pages(doc, stats)
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
        for para in paragraphs(lines, size, stats):
            append(paras, para, stats)
    text = resolve_hyphens("\n\n".join(paras), stats)
    return Extracted(title or (paras[0][:200] if paras else ""), text)
