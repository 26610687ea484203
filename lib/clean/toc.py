"""Tables of contents, lists of figures and back-of-book indexes: page numbers for a reader of
the printed book, noise for a model ("5.1 Kernels . . . . . . 12" teaches nothing, and a heading
listed there first would make the real heading look like a repeated line later).

A PDF page is dropped whole when it reads as such a page (is_toc_page), and the contents block
of a page that has more on it is dropped alone (toc_run); in any text, a line with
a dot leader (a run of dots, optionally spaced, ending in a page number or nothing) is dropped
(drop_leader_lines). Both count (pdf_toc_pages, toc_lines_removed in metrics/clean.json).
"""
from __future__ import annotations

import re
from collections import Counter

from lib.clean.text import fenced_lines

# the counters this module adds to the clean metrics (lib/clean/counters.py gathers them)
COUNTERS = ("toc_lines_removed",)

# "Kernels . . . . . 12", "Kernels........12", "Kernels … 12", or a bare leader MuPDF split off
# (prose that trails off, "and so on . . . .", has no page number and keeps its line)
LEADER = re.compile(r"(?:\.\s?){4,}\s*(?:\d{1,4}|[ivxlc]{1,6})\s*$|^\s*(?:\.\s?){4,}\s*$"
                    r"|\u2026\s*\d{1,4}\s*$", re.I)
# on a page judged as a whole, a leader whose number MuPDF set apart (or the margin took) counts
_PAGE_LEADER = re.compile(r"(?:\.\s?){4,}\s*(?:\d{1,4}|[ivxlc]{1,6})?\s*$|\u2026\s*\d{1,4}\s*$",
                          re.I)
# "title 12": a page number at the end, a letter before it (two plain regexes: one pattern with
# two lazy wildcards backtracks quadratically on every long prose line)
_ENDS_NUMBER = re.compile(r"\s(?:\d{1,4}|[ivxlc]{1,6})\s*$", re.I)
_LETTER = re.compile(r"[^\W\d_]")
_INDEX_ENTRY = re.compile(r"^[^\W\d_].{0,60}?,\s*\d{1,4}(?:\s*[-\u2013]\s*\d{1,4})?"
                          r"(?:,\s*\d{1,4}(?:\s*[-\u2013]\s*\d{1,4})?)*\s*$")
_TOC_TITLE = re.compile(r"^\W*(table of )?contents|^\W*list of (figures|tables|listings)|^\W*index\b",
                        re.I)
_SECTION = re.compile(r"^(?:\d{1,2}(?:\.\d{1,2})*|[A-Z])\.?\s+[^\W\d_]")
_NUMBER = re.compile(r"^\s*(?:\d{1,4}(?:\.\d{1,3})*|[ivxlc]{1,6})\s*$", re.I)
_SHORT_TITLE = re.compile(r"^[^\W\d_][^.!?:;]*$")  # no sentence end: a title, not prose
_MIN_LEADERS = 3        # dot-leader lines on a page that make it a contents page...
_LEADER_SHARE = 0.35    # ...when they are at least this share of its lines
_ENTRY_SHARE = 0.5      # a contents block: at least this share of its lines are entries
_TITLED_SHARE = 0.8     # a page under a "Contents" title with this share of entries is all contents
_MIN_INDEX = 8          # an index page: at least this many "term, 12, 34" lines...
_INDEX_SHARE = 0.5      # ...making at least this share of its lines


def is_toc_page(texts: list[str]) -> bool:
    """A page that is all contents, list of figures or index, from its lines' texts."""
    n = len(texts)
    if not n:
        return False
    leaders = sum(1 for t in texts if _PAGE_LEADER.search(t))
    if leaders >= _MIN_LEADERS and leaders >= _LEADER_SHARE * n:
        return True
    if (leaders >= _MIN_LEADERS and any(_TOC_TITLE.match(t) for t in texts[:3])
            and sum(1 for t in texts if _entry(t, loose=True)) >= _TITLED_SHARE * n):
        return True
    index = sum(1 for t in texts if _INDEX_ENTRY.match(t))
    return index >= _MIN_INDEX and index >= _INDEX_SHARE * n


def toc_run(texts: list[str]) -> range:
    """On a page that is only partly contents (a title page with the contents under it): the
    lines from the first dot-leader line to the last, when the lines between are all entries
    (leaders, "title number", bare numbers), with a "Contents" title right above; else empty."""
    hits = [i for i, t in enumerate(texts) if _PAGE_LEADER.search(t)]
    if len(hits) < _MIN_LEADERS:
        return range(0)
    first, last = hits[0], hits[-1]
    if sum(_entry(t, loose=True) for t in texts[first:last + 1]) < _ENTRY_SHARE * (last + 1 - first):
        return range(0)
    title = next((j for j in range(first - 1, -1, -1) if _TOC_TITLE.match(texts[j])), None)
    above = texts[title + 1:first] if title is not None else []
    if title is not None and sum(_entry(t, loose=True) for t in above) >= _ENTRY_SHARE * len(above):
        first = title  # the "Contents" title and the entries under it before the first leader
    while first > 0 and _entry(texts[first - 1]):
        first -= 1
    while last + 1 < len(texts) and _entry(texts[last + 1]):
        last += 1
    return range(first, last + 1)


def _title_number(text: str) -> bool:
    m = _ENDS_NUMBER.search(text)
    return m is not None and m.start() >= 3 and bool(_LETTER.search(text, 0, m.start()))


def _entry(text: str, loose: bool = False) -> bool:
    """A contents entry: a leader, "title 12", a bare page or section number, or a numbered
    section title whose page number the margin took ("2.1 Default Runtime Environment");
    loose: any short line without a sentence end (a title MuPDF set apart from its number)."""
    if _PAGE_LEADER.search(text) or _title_number(text) or _NUMBER.match(text):
        return True
    short = len(text.split()) <= 10
    return short and bool(_SECTION.match(text) or (loose and _SHORT_TITLE.match(text)))


def drop_leader_lines(text: str, stats: Counter) -> str:
    """Lines ending in a dot leader (outside code) removed."""
    if "...." not in text and ". . . ." not in text and "\u2026" not in text:
        return text
    out: list[str] = []
    for line, in_code in fenced_lines(text):
        if in_code is False and LEADER.search(line):
            stats["toc_lines_removed"] += 1
            continue
        out.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out))


def leader_lines(text: str) -> int:
    """Dot-leader lines outside code (the benchmark's "TOC lines left")."""
    return sum(1 for line, in_code in fenced_lines(text) if in_code is False and LEADER.search(line))
