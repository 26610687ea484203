"""PDF text with PyMuPDF: column-aware reading order, running headers/footers, page numbers and
margin line numbers removed, hyphenated breaks joined, wrapped lines joined into paragraphs,
monospaced lines kept as code. Pages with no text layer are counted as scanned; encrypted and
corrupt files are reported.

Works on lines (not MuPDF's blocks): a producer that writes both columns line by line makes
blocks that straddle the columns, while each line's box tells its column reliably.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

import pymupdf

from lib.clean.html import Extracted

_NUMBER_ONLY = re.compile(r"^\s*(?:[-\u2013\u2014(\[]?\s*(?:page\s+)?\d{1,5}(?:\s*(?:/|of)\s*\d{1,5})?"
                          r"\s*[-\u2013\u2014)\]]?|[ivxlcdm]{1,6})\s*$", re.I)
_DIGITS = re.compile(r"\d+")
_BULLET = re.compile(r"^[\u2022\u2023\u25e6\u2043\u25aa\u25cf]\s*")
_SOFT = "\x02"  # marks a line-end hyphen until the whole document is known
_SOFT_WORD = re.compile(r"(\w+)\x02(\w+)")
_SENTENCE_END = re.compile(r"[.!?:;)\]\"\u201d']$")
_HYPHEN_END = re.compile(r"[A-Za-z\u00c0-\u024f][-\u00ad\u2010]$")
_FLAGS = pymupdf.TEXT_PRESERVE_LIGATURES | pymupdf.TEXT_PRESERVE_WHITESPACE | pymupdf.TEXT_MEDIABOX_CLIP
_MONO = 8  # span flag bit: monospaced font

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


def _lines(page, stats: Counter) -> list[Line]:
    """Text lines of a page, with number-only spans in the side margins (line numbers) and
    number-only lines at the top or bottom edge (page numbers) removed. The margins are the
    page edges and whatever lies outside the body text's left and right edges."""
    width, height = page.rect.width, page.rect.height
    raw = []
    for block in page.get_text("dict", flags=_FLAGS)["blocks"]:
        for line in block.get("lines", ()):
            spans = [s for s in line["spans"] if s["text"].strip()]
            if spans:
                raw.append((line["bbox"], spans))
    body = [s for _, spans in raw for s in spans if not _NUMBER_ONLY.match(s["text"])]
    left = min((s["bbox"][0] for s in body), default=width * 0.12)
    right = max((s["bbox"][2] for s in body), default=width * 0.88)
    left, right = max(left - 1, width * 0.12), min(right + 1, width * 0.88)
    out = []
    for bbox, spans in raw:
        y0, y1 = bbox[1], bbox[3]
        while spans and _margin_number(spans[0], left, right):
            stats["pdf_line_numbers_removed"] += 1
            spans = spans[1:]
        while spans and _margin_number(spans[-1], left, right):
            stats["pdf_line_numbers_removed"] += 1
            spans = spans[:-1]
        if not spans:
            continue
        text = "".join(s["text"] for s in spans).strip()
        if _NUMBER_ONLY.match(text) and (y1 < height * 0.1 or y0 > height * 0.9):
            stats["pdf_page_numbers_removed"] += 1
            continue
        mono = all(s["flags"] & _MONO for s in spans)
        out.append(Line(spans[0]["bbox"][0], y0, spans[-1]["bbox"][2], y1, text, mono,
                        max(s["size"] for s in spans)))
    return out


def _margin_number(span: dict, left: float, right: float) -> bool:
    x0, _, x1, _ = span["bbox"]
    return bool(_NUMBER_ONLY.match(span["text"])) and (x1 <= left or x0 >= right)


def _reading_order(lines: list[Line], width: float, stats: Counter) -> list[Line]:
    """Full-width lines split the page into bands; in a band the left column comes first."""
    mid, slack = width / 2, width * 0.03
    lines.sort(key=lambda ln: (round(ln.y0, 1), ln.x0))
    out: list[Line] = []
    left: list[Line] = []
    right: list[Line] = []

    def emit() -> None:
        if left and right:
            stats["pdf_two_column_bands"] += 1
        out.extend(left + right)
        left.clear()
        right.clear()

    for ln in lines:
        if ln.x1 <= mid + slack:
            left.append(ln)
        elif ln.x0 >= mid - slack:
            right.append(ln)
        else:
            emit()
            out.append(ln)
    emit()
    return out


def _edge_key(ln: Line, height: float) -> str | None:
    if ln.y1 < height * 0.12 or ln.y0 > height * 0.88:
        return _DIGITS.sub("#", ln.text.lower())
    return None


def _body_size(pages: list) -> float:
    """The most common font size (by characters): the body text; larger short lines are headings."""
    sizes = Counter()
    for _, lines in pages:
        for ln in lines:
            sizes[round(ln.size, 1)] += len(ln.text)
    return sizes.most_common(1)[0][0] if sizes else 0.0


def _paragraphs(lines: list[Line], body_size: float, stats: Counter) -> list[str]:
    """Group lines into paragraphs by vertical gaps; join wrapped prose; fence monospace code."""
    paras: list[str] = []
    cur: list[Line] = []
    for ln in lines:
        if cur:
            prev = cur[-1]
            gap = ln.y0 - prev.y1
            # a blank line's worth of gap, a jump back up (next column), or code/prose switch
            if (gap > 0.8 * prev.size or gap < -prev.size or ln.mono != prev.mono
                    or abs(ln.size - prev.size) > 0.5 or _BULLET.match(ln.text)):
                paras.append(_render(cur, body_size, stats))
                cur = []
        cur.append(ln)
    if cur:
        paras.append(_render(cur, body_size, stats))
    return [p for p in paras if p]


def _render(lines: list[Line], body_size: float, stats: Counter) -> str:
    if lines[0].size >= body_size * 1.1 and len(lines) <= 3 and not lines[0].mono:
        level = 1 if lines[0].size >= body_size * 1.4 else 2
        stats["pdf_headings"] += 1
        return "#" * level + " " + " ".join(ln.text for ln in lines)
    if lines[0].mono:
        left = min(ln.x0 for ln in lines)
        char = max(0.1, 0.6 * lines[0].size)
        body = [" " * round((ln.x0 - left) / char) + ln.text for ln in lines]
        return "\n".join(["```", *body, "```"])
    text = ""
    for ln in lines:
        if not text and _BULLET.match(ln.text) and len(ln.text) > 2:
            text = "- " + _BULLET.sub("", ln.text, count=1)
        elif not text:
            text = ln.text
        elif _HYPHEN_END.search(text) and ln.text[:1].islower():
            text = text[:-1] + _SOFT + ln.text
        else:
            text += " " + ln.text
    return text


def _resolve_hyphens(text: str, stats: Counter) -> str:
    """A line-end hyphen is dropped ("replace-|ment" -> "replacement") unless the document uses
    the hyphenated form elsewhere and never the joined one ("memory-|bound" stays)."""
    if _SOFT not in text:
        return text

    def fix(m: re.Match) -> str:
        left, right = m.group(1), m.group(2)
        if f"{left}-{right}" in text and f"{left}{right}" not in text:
            stats["pdf_hyphens_kept"] += 1
            return f"{left}-{right}"
        stats["pdf_hyphens_joined"] += 1
        return left + right

    return _SOFT_WORD.sub(fix, text).replace(_SOFT, "")


def _append(paragraphs: list[str], para: str, stats: Counter) -> None:
    """A paragraph cut by a column or page break continues the previous one."""
    prev = paragraphs[-1] if paragraphs else ""
    if prev and not prev.startswith(("```", "#")) and para[:1].islower() and not _SENTENCE_END.search(prev):
        stats["pdf_breaks_rejoined"] += 1
        if _HYPHEN_END.search(prev):
            paragraphs[-1] = prev[:-1] + _SOFT + para
        else:
            paragraphs[-1] = prev + " " + para
    else:
        paragraphs.append(para)


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
        pages, scanned = [], 0
        try:
            for page in doc:
                lines = _lines(page, stats)
                if not lines and page.get_images(full=False):
                    scanned += 1
                pages.append((page.rect.height, _reading_order(lines, page.rect.width, stats)))
        except Exception:  # noqa: BLE001
            return Extracted(title, "", reason="pdf_corrupt")
    stats["pdf_pages"] += len(pages)
    stats["pdf_scanned_pages"] += scanned
    pages = [(h, lines) for h, lines in pages if lines]
    if not pages:
        return Extracted(title, "", reason="pdf_scanned" if scanned else "empty")
    repeated: set[str] = set()
    if len(pages) >= min_pages:
        counts = Counter(k for h, lines in pages for k in {_edge_key(ln, h) for ln in lines} if k)
        repeated = {k for k, n in counts.items() if n >= repeat_share * len(pages)}
    paragraphs: list[str] = []
    seen_pages: set[int] = set()
    body_size = _body_size(pages)
    for h, lines in pages:
        kept = [ln for ln in lines if _edge_key(ln, h) not in repeated]
        stats["pdf_running_lines_removed"] += len(lines) - len(kept)
        key = hash(tuple(ln.text for ln in kept))
        if key in seen_pages:  # a page repeated verbatim (a duplicated scan or print glitch)
            stats["pdf_duplicate_pages_removed"] += 1
            continue
        seen_pages.add(key)
        for para in _paragraphs(kept, body_size, stats):
            _append(paragraphs, para, stats)
    text = _resolve_hyphens("\n\n".join(paragraphs), stats)
    return Extracted(title or (paragraphs[0][:200] if paragraphs else ""), text)
