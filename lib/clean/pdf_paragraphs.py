"""PDF lines (in reading order) to paragraphs: wrapped prose joined, headings by font size,
monospaced runs fenced as code, paragraphs cut by a column or page break rejoined, and
line-end hyphens resolved once the whole document is known.

Hyphens are ours rather than MuPDF's TEXT_DEHYPHENATE: MuPDF drops every line-end hyphen, which
turns "memory-|bound" into "memorybound"; here the document decides (see resolve_hyphens).
"""
from __future__ import annotations

import re
from collections import Counter

from lib.clean.pdf_lines import Line

# The counters this module adds to a document's stats (lib/clean/counters.py gathers them).
COUNTERS = ("pdf_breaks_rejoined", "pdf_headings", "pdf_hyphens_joined", "pdf_hyphens_kept")
_BULLET = re.compile(r"^[\u2022\u2023\u25e6\u2043\u25aa\u25cf\u25b6\u25b8]\s*")
_SOFT = "\x02"  # marks a line-end hyphen until the whole document is known
_SOFT_WORD = re.compile(r"(\w+)\x02(\w+)")
_WORD = re.compile(r"\w+")
_COMPOUND = re.compile(r"(?<![\w-])\w+-\w+(?![\w])")
_SENTENCE_END = re.compile(r"[.!?:;)\]\"\u201d']$")
_HYPHEN_END = re.compile(r"[A-Za-z\u00c0-\u024f][-\u00ad\u2010]$")


def body_size(pages: list[list[Line]]) -> float:
    """The most common font size (by characters): the body text; larger short lines are headings."""
    sizes: Counter = Counter()
    for lines in pages:
        for ln in lines:
            sizes[round(ln.size, 1)] += len(ln.text)
    return sizes.most_common(1)[0][0] if sizes else 0.0


def paragraphs(lines: list[Line], body: float, stats: Counter) -> list[str]:
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
                paras.append(_render(cur, body, stats))
                cur = []
        cur.append(ln)
    if cur:
        paras.append(_render(cur, body, stats))
    return [p for p in paras if p]


def _render(lines: list[Line], body: float, stats: Counter) -> str:
    if lines[0].size >= body * 1.1 and len(lines) <= 3 and not lines[0].mono:
        level = 1 if lines[0].size >= body * 1.4 else 2
        stats["pdf_headings"] += 1
        return "#" * level + " " + " ".join(ln.text for ln in lines)
    if lines[0].mono:
        left = min(ln.x0 for ln in lines)
        char = max(0.1, 0.6 * lines[0].size)
        code = [" " * round((ln.x0 - left) / char) + ln.text for ln in lines]
        return "\n".join(["```", *code, "```"])
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


def append(paras: list[str], para: str, stats: Counter) -> None:
    """A paragraph cut by a column or page break continues the previous one."""
    prev = paras[-1] if paras else ""
    if (prev and not prev.startswith(("```", "#")) and para[:1].islower()
            and not _SENTENCE_END.search(prev)):
        stats["pdf_breaks_rejoined"] += 1
        if _HYPHEN_END.search(prev):
            paras[-1] = prev[:-1] + _SOFT + para
        else:
            paras[-1] = prev + " " + para
    else:
        paras.append(para)


def resolve_hyphens(text: str, stats: Counter) -> str:
    """A line-end hyphen is dropped ("replace-|ment" -> "replacement") unless the document uses
    the hyphenated form elsewhere and never the joined one ("memory-|bound" stays)."""
    if _SOFT not in text:
        return text
    # one pass over the document for the words and compounds it uses, not one per hyphen
    words = set(_WORD.findall(text))
    compounds = set(_COMPOUND.findall(text))

    def fix(m: re.Match) -> str:
        left, right = m.group(1), m.group(2)
        if f"{left}-{right}" in compounds and f"{left}{right}" not in words:
            stats["pdf_hyphens_kept"] += 1
            return f"{left}-{right}"
        stats["pdf_hyphens_joined"] += 1
        return left + right

    return _SOFT_WORD.sub(fix, text).replace(_SOFT, "")
