"""PDF lines (in reading order) to paragraphs: wrapped prose joined, headings by font size,
monospaced runs fenced as code, paragraphs cut by a column or page break rejoined, and
line-end hyphens resolved once the whole document is known.

Hyphens are ours rather than MuPDF's TEXT_DEHYPHENATE: MuPDF drops every line-end hyphen, which
turns "memory-|bound" into "memorybound"; here the document decides (see resolve_hyphens).
"""
from __future__ import annotations

import dataclasses
import re
from collections import Counter

from lib.clean.pdf_lines import Line

# The counters this module adds to a document's stats (lib/clean/counters.py gathers them).
COUNTERS = ("pdf_breaks_rejoined", "pdf_code_blocks", "pdf_code_breaks_rejoined", "pdf_code_lines",
            "pdf_headings", "pdf_hyphens_joined", "pdf_hyphens_kept", "pdf_slide_bullets",
            "pdf_slide_titles")
_BULLET = re.compile(r"^[\u2022\u2023\u25e6\u2043\u25aa\u25cf\u25b6\u25b8]\s*")
_SOFT = "\x02"  # marks a line-end hyphen until the whole document is known
_SOFT_WORD = re.compile(r"(\w+)\x02(\w+)")
_WORD = re.compile(r"\w+")
_COMPOUND = re.compile(r"(?<![\w-])\w+-\w+(?![\w])")
_SENTENCE_END = re.compile(r"[.!?:;)\]\"\u201d']$")
_HYPHEN_END = re.compile(r"[A-Za-z\u00c0-\u024f][-\u00ad\u2010]$")
_COMPOUND_END = re.compile(r"[A-Za-z0-9\u00c0-\u024f][-\u2010]$")
_LETTER = re.compile(r"[^\W\d_]")
_CODE_GAP_EM = 3.0   # a gap up to this (in font sizes) between two monospaced lines: same listing
_WRAP_SHARE = 0.15   # a slide line ending within this share of the text width from its right
                     # edge was wrapped; one ending earlier was a complete bullet


def body_size(pages: list[list[Line]]) -> float:
    """The most common font size (by characters): the body text; larger short lines are headings."""
    sizes: Counter = Counter()
    for lines in pages:
        for ln in lines:
            if not ln.mono:  # listings are set smaller; on a slide they can outweigh the prose
                sizes[round(ln.size, 1)] += len(ln.text)
    if not sizes:
        return _sizes_of_all(pages)
    return sizes.most_common(1)[0][0]


def _sizes_of_all(pages: list[list[Line]]) -> float:
    sizes = Counter(round(ln.size, 1) for lines in pages for ln in lines)
    return sizes.most_common(1)[0][0] if sizes else 0.0


def paragraphs(lines: list[Line], body: float, stats: Counter, deck: bool = False) -> list[str]:
    """Group lines into paragraphs by vertical gaps; join wrapped prose; fence monospace code.
    On a slide (deck) each bullet is its own item: see _items."""
    paras: list[str] = []
    groups: list[list[Line]] = []
    edges = (min(ln.x0 for ln in lines), max(ln.x1 for ln in lines)) if lines else (0.0, 0.0)
    if deck and _slide_title(lines, body):
        stats["pdf_slide_titles"] += 1
        paras.append("## " + lines[0].text)
        lines = lines[1:]
    for ln in _inline_code_as_prose(lines, edges[1]):
        if groups:
            prev = groups[-1][-1]
            gap = ln.y0 - prev.y1
            # a blank line inside a listing stays inside it; between prose it ends the paragraph
            limit = _CODE_GAP_EM if ln.mono and prev.mono else 0.8
            # a blank line's worth of gap, a jump back up (next column), or code/prose switch
            if not (gap > limit * prev.size or gap < -prev.size or ln.mono != prev.mono
                    or abs(ln.size - prev.size) > 0.5 or _BULLET.match(ln.text)):
                groups[-1].append(ln)
                continue
        groups.append([ln])
    rendered = [(g, _render(g, body, stats, deck, edges)) for g in groups]
    if deck:
        return [p for p in paras + _slide_lists(rendered) if p]
    return [p for p in paras + [text for _, text in rendered] if p]


def _slide_lists(rendered: list[tuple[list[Line], str]]) -> list[str]:
    """A slide's consecutive bullets as one list, one line each, a sub-bullet (its marker
    further right than the first bullet's) indented under its parent."""
    marked = [g for g, text in rendered if text.startswith("- ") and _BULLET.match(g[0].text)]
    lefts = sorted({round(g[0].x0) for g in marked})
    out: list[str] = []
    in_list = False
    for g, text in rendered:
        if not text.startswith("- "):
            out.append(text)
            in_list = False
            continue
        deeper = 0
        if _BULLET.match(g[0].text):
            deeper = sum(1 for x in lefts if x < round(g[0].x0) - 0.5 * g[0].size)
        item = "\n".join("  " * min(deeper, 3) + ln for ln in text.split("\n"))
        if in_list:
            out[-1] += "\n" + item
        else:
            out.append(item)
        in_list = True
    return out


def _slide_title(lines: list[Line], body: float) -> bool:
    """The first line of a slide is its title when it is set in body type (a larger one is a
    heading anyway), has words, and stands apart: the lines under it are indented or spaced
    off (Beamer sets the frame title flush left, the bullets indented under it)."""
    if len(lines) < 2:
        return False
    first, nxt = lines[0], lines[1]
    return (not first.mono and not _BULLET.match(first.text) and not _is_heading([first], body)
            and len(first.text.split()) <= 12 and bool(_LETTER.search(first.text))
            and first.x0 <= min(ln.x0 for ln in lines) + 1
            and (nxt.x0 > first.x0 + first.size or nxt.y0 - first.y1 > 0.8 * first.size))


def _inline_code_as_prose(lines: list[Line], right: float) -> list[Line]:
    """A lone typewriter line right under a prose line that ran to the right edge (a wrapped
    URL or identifier, "... found at http://wiki." + "mpich.org/...") continues the sentence:
    it is not a listing. A listing is set off by space or is more than one line. So does one
    between two prose lines of its size ("Multiple calls to ncclSend() and" / "ncclRecv()" /
    "should be fused with"): a sentence wrapped around an identifier."""
    out = list(lines)
    for i in range(1, len(out)):
        prev, ln = out[i - 1], out[i]
        nxt = out[i + 1] if i + 1 < len(out) else None
        if not ln.mono or prev.mono or not _under(ln, prev):
            continue
        if ((prev.x1 >= right - 1.5 * prev.size
                and (nxt is None or not nxt.mono or nxt.y0 - ln.y1 > 0.8 * ln.size))
                or (nxt is not None and not nxt.mono and _under(nxt, ln))):
            out[i] = dataclasses.replace(ln, mono=False)
    return out


def _under(ln: Line, prev: Line) -> bool:
    """The next line of the same paragraph: right under, lined up, in the same type size (an
    identifier in a sentence is set in the sentence's size; a listing on a slide is smaller)."""
    # boxes of fonts with tall ascenders overlap a little between lines of one paragraph
    return (-0.3 * prev.size <= ln.y0 - prev.y1 < 0.5 * prev.size
            and abs(ln.x0 - prev.x0) < prev.size
            and abs(ln.size - prev.size) <= 0.5)


def _is_heading(lines: list[Line], body: float) -> bool:
    """Larger type, at most three lines, and words: a chart's tick label ("0.5", "20") or an
    axis number is set large on slides but is not a heading."""
    return (lines[0].size >= body * 1.1 and len(lines) <= 3 and not lines[0].mono
            and not _BULLET.match(lines[0].text)  # a bullet set large is still a bullet
            and any(_LETTER.search(ln.text) for ln in lines))


def _render(lines: list[Line], body: float, stats: Counter, deck: bool = False,
            edges: tuple[float, float] = (0.0, 0.0)) -> str:
    if _is_heading(lines, body):
        level = 1 if lines[0].size >= body * 1.4 else 2
        stats["pdf_headings"] += 1
        return "#" * level + " " + " ".join(ln.text for ln in lines)
    if lines[0].mono:
        return _code(lines, stats)
    if deck:
        items = _items(lines, *edges)
        if len(items) > 1:
            stats["pdf_slide_bullets"] += len(items)
            out: list[str] = []
            for item in items:
                text = _join_prose(item)
                if not any(c.isalnum() for c in text):  # a stray mark: part of the item above
                    if out and text.strip("- "):
                        out[-1] += text.strip("- ")
                    continue
                out.append(text if text.startswith("- ") else "- " + text)
            return "\n".join(out)
    return _join_prose(lines)


def _code(lines: list[Line], stats: Counter) -> str:
    """A fenced listing: one line per PDF line, indentation from the x offset in character
    widths measured on the listing itself, blank lines where the listing has a gap."""
    left = min(ln.x0 for ln in lines)
    widths = sorted((ln.x1 - ln.x0) / len(ln.text) for ln in lines if len(ln.text) >= 4)
    char = widths[len(widths) // 2] if widths else 0.55 * lines[0].size
    char = max(char, 0.1)
    code: list[str] = []
    prev = None
    for ln in lines:
        if prev is not None and ln.y0 - prev.y1 > 0.8 * prev.size:
            code.append("")
        code.append(" " * round((ln.x0 - left) / char) + ln.text)
        prev = ln
    stats["pdf_code_blocks"] += 1
    stats["pdf_code_lines"] += len(lines)
    return "\n".join(["```", *code, "```"])


def _items(lines: list[Line], left: float, right: float) -> list[list[Line]]:
    """Slide bullets: a line starts a new item unless the line before it ran to the right edge
    of the slide's text (left, right: the extremes of the slide's lines). A wrapped bullet
    fills its line; one that ends short was complete. The bullet glyph itself is often a
    drawing, not text, so the layout is what tells."""
    full = right - _WRAP_SHARE * max(1.0, right - left)
    items: list[list[Line]] = [[lines[0]]]
    for prev, ln in zip(lines, lines[1:]):
        wrapped = prev.x1 >= full and ln.x0 >= prev.x0 - 0.5 * prev.size
        marker = len(prev.text) <= 2 and not any(c.isalnum() for c in prev.text)
        # a line under a marked bullet's text, lined up with it, is that bullet wrapped
        head = items[-1][0]
        under = _BULLET.match(head.text) and abs(ln.x0 - head.x0) < 0.5 * head.size
        if marker or ((wrapped or under) and not _BULLET.match(ln.text)):
            items[-1].append(ln)
        else:
            items.append([ln])
    return items


def _join_prose(lines: list[Line]) -> str:
    text = ""
    for ln in lines:
        if not text and _BULLET.match(ln.text) and len(ln.text) > 2:
            text = "- " + _BULLET.sub("", ln.text, count=1)
        elif not text:
            text = ln.text
        elif _HYPHEN_END.search(text) and ln.text[:1].islower():
            text = text[:-1] + _SOFT + ln.text
        elif _COMPOUND_END.search(text) and (ln.text[:1].isupper() or ln.text[:1].isdigit()):
            text += ln.text  # "MPI-|IO", "MPI-|2": a compound broken at its hyphen, kept whole
        else:
            text += " " + ln.text
    return text


def append(paras: list[str], para: str, stats: Counter, deck: bool = False) -> None:
    """A paragraph cut by a column or page break continues the previous one; a listing cut by
    a page break continues the previous listing. Not on slides: a page there is a slide."""
    prev = paras[-1] if paras else ""
    if deck or not prev:
        paras.append(para)
    elif prev.startswith("```") and para.startswith("```"):
        stats["pdf_code_breaks_rejoined"] += 1
        paras[-1] = prev[:-len("```")] + para[len("```\n"):]
    elif (not prev.startswith(("```", "#")) and para[:1].islower()
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
        # "CPU-|thread": an acronym before the hyphen makes a compound, not a split word
        acronym = len(left) >= 2 and left[-2:].isupper() and right[:1].islower()
        if acronym or (f"{left}-{right}" in compounds and f"{left}{right}" not in words):
            stats["pdf_hyphens_kept"] += 1
            return f"{left}-{right}"
        stats["pdf_hyphens_joined"] += 1
        return left + right

    return _SOFT_WORD.sub(fix, text).replace(_SOFT, "")
