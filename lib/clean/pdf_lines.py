"""One PDF page to text lines in reading order.

The words and their spaces are MuPDF's own: its span text already carries the spaces it infers
from glyph gaps (TeX and Beamer PDFs position words instead of writing space glyphs), and with
TEXT_PRESERVE_LIGATURES off it expands ligatures itself. On top of that this module only does
layout: number-only spans in the side margins (line numbers) and number-only lines at the top or
bottom edge (page numbers) are dropped, and lines are put in reading order for two-column pages
and for 2x2 slide handouts.

Works on lines (not MuPDF's blocks): a producer that writes both columns line by line makes
blocks that straddle the columns, while each line's box tells its column reliably.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import pymupdf

FLAGS = pymupdf.TEXT_PRESERVE_WHITESPACE | pymupdf.TEXT_MEDIABOX_CLIP
NUMBER_ONLY = re.compile(r"^\s*(?:[-\u2013\u2014(\[]?\s*(?:page\s+)?\d{1,5}(?:\s*(?:/|of)\s*\d{1,5})?"
                         r"\s*[-\u2013\u2014)\]]?|[ivxlcdm]{1,6})\s*$", re.I)
_MONO = 8          # span flag bit: monospaced font
_GAP_EM = 0.25     # a gap between two spans wider than this (in font sizes) is a word space
_BAND_GAP = 0.03   # an empty horizontal strip this tall (share of page height) separates bands

pymupdf.TOOLS.mupdf_display_errors(False)
pymupdf.TOOLS.mupdf_display_warnings(False)


@dataclass
class Line:
    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    mono: bool
    size: float


def _join(spans: list[dict]) -> str:
    """Span texts joined; a space goes in where MuPDF split spans at a gap without writing one
    (a font switch right after a positioned space)."""
    out: list[str] = []
    for prev, span in zip([None, *spans], spans):
        text = span["text"]
        if prev is not None and out and not out[-1][-1:].isspace() and not text[:1].isspace():
            if span["bbox"][0] - prev["bbox"][2] > _GAP_EM * min(span["size"], prev["size"]):
                out.append(" ")
        out.append(text)
    return "".join(out).strip()


def _margin_number(span: dict, left: float, right: float, neighbour: dict | None) -> bool:
    """A number in a side margin, set apart from the text beside it: a line number, not the
    "(0" that ends a sentence running into the margin of a slide."""
    x0, _, x1, _ = span["bbox"]
    if not NUMBER_ONLY.match(span["text"]) or not (x1 <= left or x0 >= right):
        return False
    if neighbour is None:
        return True
    gap = neighbour["bbox"][0] - x1 if x1 <= left else x0 - neighbour["bbox"][2]
    return gap > span["size"]


def _raw_lines(page) -> list[tuple[tuple, list[dict]]]:
    """(line box, its spans without whitespace-only spans at either end) per text line."""
    raw = []
    for block in page.get_text("dict", flags=FLAGS)["blocks"]:
        for line in block.get("lines", ()):
            spans = line["spans"]
            # whitespace-only spans at the ends carry nothing; inside a line they are the spaces
            while spans and not spans[0]["text"].strip():
                spans = spans[1:]
            while spans and not spans[-1]["text"].strip():
                spans = spans[:-1]
            if spans:
                raw.append((line["bbox"], spans))
    return raw


def _body_edges(raw: list, width: float) -> tuple[float, float]:
    """Left and right edge of the body text: the extremes of each line once number-only spans
    at its ends are set aside (a line's first and last spans hold its extremes)."""
    left, right = width, 0.0
    for _, spans in raw:
        words = [s for s in (spans[0], spans[-1]) if not NUMBER_ONLY.match(s["text"])]
        if words:
            left, right = min(left, words[0]["bbox"][0]), max(right, words[-1]["bbox"][2])
    if right <= left:
        left, right = width * 0.12, width * 0.88
    return max(left - 1, width * 0.12), min(right + 1, width * 0.88)


def page_lines(page, stats: Counter) -> list[Line]:
    """Text lines of a page, margin line numbers and edge page numbers removed. The margins are
    the page edges and whatever lies outside the body text's left and right edges."""
    width, height = page.rect.width, page.rect.height
    raw = _raw_lines(page)
    left, right = _body_edges(raw, width)
    out = []
    for bbox, spans in raw:
        y0, y1 = bbox[1], bbox[3]
        if spans[0]["bbox"][0] <= left or spans[-1]["bbox"][2] >= right:
            spans = _strip_margin_numbers(spans, left, right, stats)
            if not spans:
                continue
        text = _join(spans)
        if (y1 < height * 0.1 or y0 > height * 0.9) and NUMBER_ONLY.match(text):
            stats["pdf_page_numbers_removed"] += 1
            continue
        mono = all(s["flags"] & _MONO for s in spans if s["text"].strip())
        out.append(Line(spans[0]["bbox"][0], y0, spans[-1]["bbox"][2], y1, text, mono,
                        max(s["size"] for s in spans)))
    return out


def _strip_margin_numbers(spans: list[dict], left: float, right: float,
                          stats: Counter) -> list[dict]:
    words = [s for s in spans if s["text"].strip()]
    while words and _margin_number(words[0], left, right, words[1] if len(words) > 1 else None):
        stats["pdf_line_numbers_removed"] += 1
        words.pop(0)
        spans = spans[spans.index(words[0]):] if words else []
    while words and _margin_number(words[-1], left, right, words[-2] if len(words) > 1 else None):
        stats["pdf_line_numbers_removed"] += 1
        words.pop()
        spans = spans[:spans.index(words[-1]) + 1] if words else []
    return spans


def _bands(lines: list[Line], height: float) -> list[list[Line]]:
    """Cut the page at empty horizontal strips that cross its whole width (XY-cut, one level):
    the rows of a 2x2 handout, or a title block above two columns, become separate bands."""
    bands: list[list[Line]] = []
    bottom = None
    for ln in sorted(lines, key=lambda ln: (round(ln.y0, 1), ln.x0)):
        if bottom is None or ln.y0 - bottom > _BAND_GAP * height:
            bands.append([])
            bottom = ln.y1
        bands[-1].append(ln)
        bottom = max(bottom, ln.y1)
    return bands


def reading_order(lines: list[Line], width: float, height: float, stats: Counter) -> list[Line]:
    """Bands top to bottom; inside a band, full-width lines split it further and between them
    the left column comes before the right one."""
    mid, slack = width / 2, width * 0.03
    out: list[Line] = []
    for band in _bands(lines, height):
        left: list[Line] = []
        right: list[Line] = []
        for ln in band + [None]:
            if ln is not None and ln.x1 <= mid + slack:
                left.append(ln)
            elif ln is not None and ln.x0 >= mid - slack:
                right.append(ln)
            else:  # a full-width line (or the band's end) closes the columns above it
                if left and right:
                    stats["pdf_two_column_bands"] += 1
                out.extend(left + right)
                left, right = [], []
                if ln is not None:
                    out.append(ln)
    return out
