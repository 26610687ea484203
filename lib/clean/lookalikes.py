"""Look-alike characters that PDFs (and some HTML) put where a program has ASCII: the one table.

A typesetter draws `//` as two U+2215 DIVISION SLASH glyphs, `-` as U+2212 MINUS SIGN and `'` as
a curly quote; a compiler (and a model learning to write code) knows only the ASCII character.

- EVERYWHERE: characters that are never typography a reader chose, only a font's way to draw an
  ASCII character; replaced in prose and code alike.
- IN_CODE: characters that are good typography in prose ("it’s", “quoted”, 3 − 2) but wrong
  inside a fenced code block; replaced there only, prose keeps them.
"""
from __future__ import annotations

import re
from collections import Counter

from lib.clean.text import fenced_lines

# the counters this module adds to the clean metrics (lib/clean/counters.py gathers them)
COUNTERS = ("lookalikes_replaced",)


EVERYWHERE = {
    "\u2215": "/",   # DIVISION SLASH: MuPDF's reading of the slash in many PDF code fonts
    "\u2044": "/",   # FRACTION SLASH
}
IN_CODE = {
    "\u2212": "-",   # MINUS SIGN
    "\u2010": "-",   # HYPHEN
    "\u2011": "-",   # NON-BREAKING HYPHEN
    "\u2013": "-",   # EN DASH (a TeX "--" option drawn as one glyph)
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u2032": "'",    # single quotes, prime
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u2033": '"',    # double quotes, double prime
    "\u2217": "*",   # ASTERISK OPERATOR (TeX's math asterisk)
    "\u02c6": "^",   # MODIFIER LETTER CIRCUMFLEX (TeX's text \^{})
    "\u02dc": "~",   # SMALL TILDE (TeX's text \~{})
    "\u2223": "|",   # DIVIDES (TeX's math bar)
    "\u2236": ":",   # RATIO
    "\uff0f": "/",   # FULLWIDTH SOLIDUS
}
_EVERYWHERE_RE = re.compile("[" + "".join(EVERYWHERE) + "]")
_CODE_RE = re.compile("[" + "".join({**EVERYWHERE, **IN_CODE}) + "]")
_CODE_TABLE = str.maketrans({**EVERYWHERE, **IN_CODE})


def fix_lookalikes(text: str, stats: Counter) -> str:
    """Replace EVERYWHERE characters in the whole text and IN_CODE ones inside fences."""
    if not _CODE_RE.search(text):
        return text
    out: list[str] = []
    for line, in_code in fenced_lines(text):
        if in_code is None:  # the fence line itself
            pass
        elif in_code:
            n = len(_CODE_RE.findall(line))
            if n:
                stats["lookalikes_replaced"] += n
                line = line.translate(_CODE_TABLE)
        else:
            n = len(_EVERYWHERE_RE.findall(line))
            if n:
                stats["lookalikes_replaced"] += n
                line = _EVERYWHERE_RE.sub(lambda m: EVERYWHERE[m.group(0)], line)
        out.append(line)
    return "\n".join(out)


def count_left(text: str) -> int:
    """Look-alikes a cleaned text still holds where the table says they should not be."""
    return sum(len((_CODE_RE if in_code else _EVERYWHERE_RE).findall(line))
               for line, in_code in fenced_lines(text) if in_code is not None)
