"""One PDF page to text lines in reading order.

The words and their spaces are MuPDF's own: its text already carries the spaces it infers from
glyph gaps (TeX and Beamer PDFs position words instead of writing space glyphs), and with
TEXT_PRESERVE_LIGATURES off it expands ligatures itself. On top of that this module only does
layout: number-only spans in the side margins (line numbers) and number-only lines at the top or
bottom edge (page numbers) are dropped, and lines are put in reading order for two-column pages
and for 2x2 slide handouts.

Speed: the page comes out of MuPDF as its own JSON (fz_print_stext_page_as_json) with
TEXT_PRESERVE_SPANS, so each "line" there is one run of one font with its box, size and family:
the font data that headings and code need, at a fraction of the cost of get_text("dict") (which
builds a Python dict per span and splits spans at every inferred space). Runs are put back into
lines here the way MuPDF does it (same block, same baseline band, left to right, a gap under
0.8 em); a gap wider than a quarter em between runs without a space becomes one.

Works on lines (not MuPDF's blocks): a producer that writes both columns line by line makes
blocks that straddle the columns, while each line's box tells its column reliably.
"""
from __future__ import annotations

import functools
import json
import re
from collections import Counter
from dataclasses import dataclass

import pymupdf

# The counters this module adds to a document's stats (lib/clean/counters.py gathers them).
COUNTERS = ("pdf_bullet_glyphs", "pdf_line_numbers_removed", "pdf_page_numbers_removed",
            "pdf_two_column_bands")
FLAGS = pymupdf.TEXT_PRESERVE_WHITESPACE | pymupdf.TEXT_MEDIABOX_CLIP | pymupdf.TEXT_PRESERVE_SPANS
NUMBER_ONLY = re.compile(r"^\s*(?:[-\u2013\u2014(\[]?\s*(?:page\s+)?\d{1,5}(?:\s*(?:/|of)\s*\d{1,5})?"
                         r"\s*[-\u2013\u2014)\]]?|[ivxlcdm]{1,6})\s*$", re.I)
_MONO = 8          # span flag bit: monospaced font (get_text("dict") fallback)
_GAP_EM = 0.25     # a gap between two runs wider than this (in font sizes) is a word space
_LINE_GAP_EM = 0.8  # a gap wider than this ends the line (MuPDF's own line break, measured)
_CODE_GAP_EM = 6.0  # the same between two monospaced runs
_BACK_EM = 0.6     # a run may start this far left of the line's end (kerning, raised letters)
_BAND_GAP = 0.03   # an empty horizontal strip this tall (share of page height) separates bands
# Typewriter fonts by name: MuPDF's monospace flag and family come from the font's own metadata,
# which TeX's Type 1 fonts (CMTT10 reports family "serif", flags 4) and many subsets leave unset.
_MONO_NAME = re.compile(r"mono|courier|cmtt|sftt|ectt|tctt|lmtt|txtt|pcrr|nimbusmon|inconsolata|"
                        r"consola|menlo|monaco|typewriter|cousine|andale|lucidacons|letter ?gothic|"
                        r"sourcecode|firacode|cursor|fixed|\btt\d", re.I)
_SCALE = 100.0     # MuPDF's JSON writes integer coordinates: ask for hundredths of a point
# A list marker set as a glyph of its own: a bullet, a dash, or a character of a symbol font
# (PowerPoint's Wingdings square is U+F0A7: symbol fonts map into the Private Use Area)
_MARKER = re.compile(r"^[\u2022\u2023\u25e6\u2043\u25aa\u25ab\u25a0\u25cf\u25b6\u25b8\u27a2\u2756"
                     r"\u2212\u2013\ue000-\uf8ff]$")
_PUA_LEAD = re.compile(r"^[\ue000-\uf8ff]\s+")
_MARKER_GAP_EM = 2.5  # a marker this far (in font sizes) left of its line's text
_GUTTER_MIN = 0.02    # a slide's column gutter: at least this share of the page width
_ROW_SHARE = 0.3      # columns whose lines share baselines this often are a table's rows

pymupdf.TOOLS.mupdf_display_errors(False)
pymupdf.TOOLS.mupdf_display_warnings(False)


@dataclass(slots=True)
class Line:
    x0: float
    y0: float
    x1: float
    y1: float
    text: str
    mono: bool
    size: float


# A run: (x0, y0, x1, y1, text, size, mono); None between blocks.
# A raw line: [x0, y0, x1, y1, runs, size].
Run = tuple
# One run ("line" under TEXT_PRESERVE_SPANS) of MuPDF's JSON, or a block's start. The writer's
# key order is fixed; should it ever change, the count check in _runs falls back to json.loads.
_JSON_RUN = re.compile(
    r'"type":"(\w+)"|"wmode":\d+,"bbox":\{"x":(-?\d+),"y":(-?\d+),"w":(-?\d+),"h":(-?\d+),'
    r'"flags":\d+\},"font":\{"name":"([^"\\]*(?:\\.[^"\\]*)*)","family":"(\w)[^"]*",'
    r'"weight":"[^"]*","style":"[^"]*","size":(-?\d+)\},"x":-?\d+,"y":-?\d+,'
    r'"text":"([^"\\]*(?:\\.[^"\\]*)*)"\}')


@functools.cache
def is_mono_font(name: str) -> bool:
    """A typewriter font by its name, the subset prefix ("QRHGHJ+") ignored."""
    return bool(_MONO_NAME.search(name.rsplit("+", 1)[-1]))


def _runs(page) -> list[Run | None]:
    """The page's runs in MuPDF's order, None where a block starts: MuPDF's JSON (one C pass)
    read with one regex, no Python object per key."""
    tp = page.get_textpage(flags=FLAGS)
    buf = pymupdf.mupdf.fz_new_buffer(1 << 16)
    out = pymupdf.mupdf.FzOutput(buf)
    pymupdf.mupdf.fz_print_stext_page_as_json(out, tp.this, _SCALE)
    out.fz_close_output()
    # "replace": a lone half of a surrogate pair (a glyph without a character) becomes U+FFFD
    js = pymupdf.mupdf.fz_buffer_extract(buf).decode("utf-8", "replace")
    found = _JSON_RUN.findall(js)
    if len(found) - js.count('"type":"') != js.count('"wmode":'):
        return _slow_runs(tp, js)
    s = 1 / _SCALE
    runs: list[Run | None] = []
    append = runs.append
    for kind, x, y, w, h, name, family, size, text in found:
        if kind:
            append(None)
            continue
        if "\\" in text:
            text = json.loads(f'"{text}"')
        x0, y0 = int(x) * s, int(y) * s
        append((x0, y0, x0 + int(w) * s, y0 + int(h) * s, text, int(size) * s,
                family == "m" or is_mono_font(name)))
    return runs


def _slow_runs(tp, js: str) -> list[Run | None]:
    """The same from json.loads, or from get_text("dict") if MuPDF's JSON does not parse."""
    runs: list[Run | None] = []
    s = 1 / _SCALE
    try:
        for block in json.loads(js)["blocks"]:
            runs.append(None)
            for r in block.get("lines", ()):
                b, f = r["bbox"], r["font"]
                x0, y0 = b["x"] * s, b["y"] * s
                runs.append((x0, y0, x0 + b["w"] * s, y0 + b["h"] * s, r["text"],
                             f["size"] * s, f["family"] == "monospace" or is_mono_font(f["name"])))
        return runs
    except (ValueError, KeyError, TypeError):
        runs = []
    for block in tp.extractDICT()["blocks"]:
        runs.append(None)
        runs.extend((*sp["bbox"], sp["text"], sp["size"],
                     bool(sp["flags"] & _MONO) or is_mono_font(sp["font"]))
                    for line in block.get("lines", ()) for sp in line["spans"])
    return runs


def _raw_lines(page) -> list[list]:
    """[x0, y0, x1, y1, runs, size] per text line, whitespace-only runs at either end dropped:
    runs of a block joined into lines (same baseline band, left to right, no wide gap)."""
    raw: list[list] = []
    cur = None
    for run in _runs(page):
        if run is None:
            cur = None
            continue
        x0, y0, x1, y1, _, size, _ = run
        if cur is not None:
            cx1, cy0, cy1, big = cur[2], cur[1], cur[3], cur[5]
            if size > big:
                big = size
            # in a listing a wide gap is spaces (aligned comments), not the next column
            reach = _CODE_GAP_EM if run[6] and cur[4][-1][6] else _LINE_GAP_EM
            if cx1 - _BACK_EM * big <= x0 <= cx1 + reach * big:
                low = y1 if y1 < cy1 else cy1
                high = y0 if y0 > cy0 else cy0
                least = y1 - y0 if y1 - y0 < cy1 - cy0 else cy1 - cy0
                if low - high > 0.5 * (least if least > 0.1 else 0.1):
                    cur[4].append(run)
                    if y0 < cy0:
                        cur[1] = y0
                    if x1 > cx1:
                        cur[2] = x1
                    if y1 > cy1:
                        cur[3] = y1
                    cur[5] = big
                    continue
        cur = [x0, y0, x1, y1, [run], size]
        raw.append(cur)
    out = []
    for ln in raw:
        runs = ln[4]
        # whitespace-only runs at the ends carry nothing; inside a line they are the spaces
        if not runs[0][4].strip() or not runs[-1][4].strip():
            while runs and not runs[0][4].strip():
                runs = runs[1:]
            while runs and not runs[-1][4].strip():
                runs = runs[:-1]
            if not runs:
                continue
            ln[4] = runs
        out.append(ln)
    return out


def _join(runs: list[Run]) -> str:
    """Run texts joined; a space goes in where MuPDF left a gap between runs without writing one
    (a font switch right after a positioned space)."""
    if len(runs) == 1:
        return runs[0][4].strip()
    out: list[str] = []
    prev = None
    for run in runs:
        text = run[4]
        if (prev is not None and not out[-1][-1:].isspace() and not text[:1].isspace()
                and run[0] - prev[2] > _GAP_EM * min(run[5], prev[5])):
            out.append(" " * _spaces(prev, run))
        out.append(text)
        prev = run
    return "".join(out).strip()


def _spaces(prev: Run, run: Run) -> int:
    """Spaces for the gap between two runs: one in prose; in code as many as the monospaced
    character width fits, so the alignment of a listing survives."""
    if not (prev[6] and run[6]) or len(prev[4]) < 2:
        return 1
    char = (prev[2] - prev[0]) / len(prev[4])
    return max(1, round((run[0] - prev[2]) / char)) if char > 0 else 1


def _margin_number(run: Run, left: float, right: float, neighbour: Run | None) -> bool:
    """A number in a side margin, set apart from the text beside it: a line number, not the
    "(0" that ends a sentence running into the margin of a slide."""
    x0, x1 = run[0], run[2]
    if not (x1 <= left or x0 >= right) or not NUMBER_ONLY.match(run[4]):
        return False
    if neighbour is None:
        return True
    gap = neighbour[0] - x1 if x1 <= left else x0 - neighbour[2]
    return gap > run[5]


def _body_edges(raw: list, width: float) -> tuple[float, float]:
    """Left and right edge of the body text: the extremes of each line once number-only runs
    at its ends are set aside (a line's first and last runs hold its extremes)."""
    left, right = width, 0.0
    match = NUMBER_ONLY.match
    for ln in raw:
        runs = ln[4]
        first, last = runs[0], runs[-1]
        first_word = not match(first[4])
        last_word = first_word if last is first else not match(last[4])
        if first_word or last_word:
            left = min(left, (first if first_word else last)[0])
            right = max(right, (last if last_word else first)[2])
    if right <= left:
        left, right = width * 0.12, width * 0.88
    return max(left - 1, width * 0.12), min(right + 1, width * 0.88)


def page_lines(page, stats: Counter, rect=None) -> list[Line]:
    """Text lines of a page, margin line numbers and edge page numbers removed. The margins are
    the page edges and whatever lies outside the body text's left and right edges."""
    rect = rect if rect is not None else page.rect
    width, height = rect.width, rect.height
    raw = _raw_lines(page)
    left, right = _body_edges(raw, width)
    top, bottom = height * 0.1, height * 0.9
    out = []
    for ln in raw:
        runs = ln[4]
        y0, y1 = ln[1], ln[3]
        if runs[0][0] <= left or runs[-1][2] >= right:
            runs = _strip_margin_numbers(runs, left, right, stats)
            if not runs:
                continue
        text = _join(runs)
        if (y1 < top or y0 > bottom) and NUMBER_ONLY.match(text):
            stats["pdf_page_numbers_removed"] += 1
            continue
        if len(runs) == 1:
            mono, size = runs[0][6], runs[0][5]
        else:
            mono = all(r[6] for r in runs if r[4].strip())
            size = max(r[5] for r in runs)
        out.append(Line(runs[0][0], y0, runs[-1][2], y1, text, mono, size))
    return _attach_markers(out, stats)


def _attach_markers(lines: list[Line], stats: Counter) -> list[Line]:
    """A list marker that MuPDF reads as a line of its own (PowerPoint sets the bullet apart
    from its text, often in a symbol font whose glyphs land in the Private Use Area) becomes
    "• " at the start of the text on its baseline just right of it; the line keeps the
    text's left edge, so a wrapped bullet's next line lines up with it."""
    markers = {i for i, ln in enumerate(lines) if _MARKER.match(ln.text)}
    taken: set[int] = set()
    used: set[int] = set()
    for i in sorted(markers):
        m = lines[i]
        target = None
        for j, ln in enumerate(lines):
            if (j in markers or j in used or not 0 <= ln.x0 - m.x1 <= _MARKER_GAP_EM * m.size
                    or min(ln.y1, m.y1) - max(ln.y0, m.y0) < 0.5 * min(ln.y1 - ln.y0, m.y1 - m.y0)):
                continue
            if target is None or ln.x0 < lines[target].x0:
                target = j
        if target is not None:
            t = lines[target]
            lines[target] = Line(t.x0, min(t.y0, m.y0), t.x1, max(t.y1, m.y1), "\u2022 " + t.text,
                                 t.mono, t.size)
            taken.add(i)
            used.add(target)
            stats["pdf_bullet_glyphs"] += 1
    out = []
    for i, ln in enumerate(lines):
        if i in taken:
            continue
        if _PUA_LEAD.match(ln.text):  # a symbol-font bullet inside the text's own run
            stats["pdf_bullet_glyphs"] += 1
            ln = Line(ln.x0, ln.y0, ln.x1, ln.y1, _PUA_LEAD.sub("\u2022 ", ln.text), ln.mono,
                      ln.size)
        out.append(ln)
    return out


def _strip_margin_numbers(runs: list[Run], left: float, right: float,
                          stats: Counter) -> list[Run]:
    words = [r for r in runs if r[4].strip()]
    while words and _margin_number(words[0], left, right, words[1] if len(words) > 1 else None):
        stats["pdf_line_numbers_removed"] += 1
        words.pop(0)
        runs = runs[runs.index(words[0]):] if words else []
    while words and _margin_number(words[-1], left, right, words[-2] if len(words) > 1 else None):
        stats["pdf_line_numbers_removed"] += 1
        words.pop()
        runs = runs[:runs.index(words[-1]) + 1] if words else []
    return runs


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


def _gutter(band: list[Line], width: float) -> float | None:
    """Where a slide's band splits into two side-by-side columns that are read one after the
    other (bullets beside a listing): the widest vertical strip no line crosses, with three or
    more lines on each side whose baselines mostly do not line up. Lines that do line up are
    rows (a table, terms beside their descriptions) and are read across, so no gutter then."""
    spans = sorted((ln.x0, ln.x1) for ln in band)
    best, reach = None, spans[0][1] if spans else 0.0
    for x0, x1 in spans[1:]:
        if x0 - reach >= _GUTTER_MIN * width and (best is None or x0 - reach > best[1] - best[0]):
            best = (reach, x0)
        reach = max(reach, x1)
    if best is None:
        return None
    left = [ln for ln in band if ln.x1 <= best[0]]
    right = [ln for ln in band if ln.x0 >= best[1]]
    if len(left) < 3 or len(right) < 3:
        return None
    # a row: the same type size on the same baseline, on both sides
    rows = sum(1 for a in left if any(abs(a.y1 - b.y1) < 0.2 * a.size and abs(a.size - b.size) < 1
                                      for b in right))
    return (best[0] + best[1]) / 2 if rows < _ROW_SHARE * min(len(left), len(right)) else None


def reading_order(lines: list[Line], width: float, height: float, stats: Counter,
                  slide: bool = False) -> list[Line]:
    """Bands top to bottom; inside a band, full-width lines split it further and between them
    the left column comes before the right one. On a slide the columns need not meet at the
    middle: a band with a gutter elsewhere (_gutter) is read left column, then right."""
    mid, slack = width / 2, width * 0.03
    out: list[Line] = []
    for band in _bands(lines, height):
        cut = _gutter(band, width) if slide else None
        if cut is not None:
            stats["pdf_two_column_bands"] += 1
            out.extend([ln for ln in band if ln.x1 <= cut] + [ln for ln in band if ln.x1 > cut])
            continue
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
