"""Tables of contents, lists of figures and back-of-book indexes: page numbers for a reader of
the printed book, noise for a model ("5.1 Kernels . . . . . . 12" teaches nothing, and a heading
listed there first would make the real heading look like a repeated line later).

A PDF page is dropped whole when it reads as such a page (is_toc_page); in any text, a line with
a dot leader (a run of dots, optionally spaced, ending in a page number or nothing) is dropped
(drop_leader_lines). Both count (pdf_toc_pages, toc_lines_removed in metrics/clean.json).
"""
from __future__ import annotations

import re
from collections import Counter

# "Kernels . . . . . 12", "Kernels........12", "Kernels … 12", or a bare leader MuPDF split off
# (prose that trails off, "and so on . . . .", has no page number and keeps its line)
LEADER = re.compile(r"(?:\.\s?){4,}\s*(?:\d{1,4}|[ivxlc]{1,6})\s*$|^\s*(?:\.\s?){4,}\s*$"
                    r"|\u2026\s*\d{1,4}\s*$", re.I)
# on a page judged as a whole, a leader whose number MuPDF set apart (or the margin took) counts
_PAGE_LEADER = re.compile(r"(?:\.\s?){4,}\s*(?:\d{1,4}|[ivxlc]{1,6})?\s*$|\u2026\s*\d{1,4}\s*$",
                          re.I)
_TITLE_NUMBER = re.compile(r"^\S.{2,}?[^\W\d_].*?\s(?:\d{1,4}|[ivxlc]{1,6})\s*$", re.I)
_INDEX_ENTRY = re.compile(r"^[^\W\d_].{0,60}?,\s*\d{1,4}(?:\s*[-\u2013]\s*\d{1,4})?"
                          r"(?:,\s*\d{1,4}(?:\s*[-\u2013]\s*\d{1,4})?)*\s*$")
_TOC_TITLE = re.compile(r"^\W*(table of )?contents|^\W*list of (figures|tables|listings)|^\W*index\b",
                        re.I)
_FENCE = re.compile(r"^\s*(```|~~~)")
_MIN_LEADERS = 3        # dot-leader lines on a page that make it a contents page...
_LEADER_SHARE = 0.2     # ...when they are at least this share of its lines
_ENTRY_SHARE = 0.5      # under a "Contents"/"Index" title: this share of entry lines suffices
_MIN_INDEX = 8          # an index page: at least this many "term, 12, 34" lines...
_INDEX_SHARE = 0.5      # ...making at least this share of its lines


def is_toc_page(texts: list[str]) -> bool:
    """A contents, list-of-figures or index page, from its lines' texts."""
    n = len(texts)
    if not n:
        return False
    leaders = sum(1 for t in texts if _PAGE_LEADER.search(t))
    if leaders >= _MIN_LEADERS and leaders >= _LEADER_SHARE * n:
        return True
    entries = sum(1 for t in texts if _PAGE_LEADER.search(t) or _TITLE_NUMBER.match(t))
    if any(_TOC_TITLE.match(t) for t in texts[:3]) and entries >= max(3, _ENTRY_SHARE * n):
        return True
    index = sum(1 for t in texts if _INDEX_ENTRY.match(t))
    return index >= _MIN_INDEX and index >= _INDEX_SHARE * n


def drop_leader_lines(text: str, stats: Counter) -> str:
    """Lines ending in a dot leader (outside code) removed."""
    if "...." not in text and ". . . ." not in text and "\u2026" not in text:
        return text
    out: list[str] = []
    in_code = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_code = not in_code
        elif not in_code and LEADER.search(line):
            stats["toc_lines_removed"] += 1
            continue
        out.append(line)
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out))


def leader_lines(text: str) -> int:
    """Dot-leader lines outside code (the benchmark's "TOC lines left")."""
    in_code, n = False, 0
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_code = not in_code
        elif not in_code and LEADER.search(line):
            n += 1
    return n
