"""Repeated lines inside one document (slide headers, table rows repeated on every page, nav bars
of generated documentation) are boilerplate: the first copy stays, later copies go.

Manuals and slides repeat by nature, so rejecting them with web-page repetition thresholds throws
good text away; removing the repeats keeps the text and still lets a document that is mostly
repetition be rejected (filters.boilerplate). Fenced code is left alone: repeated code lines
("}", "end do") are code, not boilerplate; so are numbers ("2", "0.5": table cells).
"""
from __future__ import annotations

import re

_FENCE = re.compile(r"^\s*(```|~~~)")
_HAS_LETTER = re.compile(r"[^\W\d_]")


def strip_repeats(text: str) -> tuple[str, int, int]:
    """(text without repeated lines, lines removed, characters removed)."""
    seen: set[str] = set()
    out: list[str] = []
    removed = removed_chars = 0
    in_code = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_code = not in_code
        key = " ".join(line.split())
        # lines without a letter carry structure or data, not boilerplate: table rules ("---")
        # and the cells of a table or matrix that a PDF gives one per line ("2", "0", "1.5")
        if in_code or not _HAS_LETTER.search(key) or _FENCE.match(line):
            out.append(line)
        elif key in seen:
            removed += 1
            removed_chars += len(key)
        else:
            seen.add(key)
            out.append(line)
    if not removed:
        return text, 0, 0
    # a removed line between blank lines leaves two blanks: keep paragraphs single-spaced
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip("\n"), removed, removed_chars
