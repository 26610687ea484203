"""Navigation in generated documentation that has no <nav> tag: LaTeX2HTML and texinfo panels
("Next: ... Up: ... Previous: ..."), "Return to ... Index" footers, Sphinx and Doxygen link bars.
Judged per rendered line, with the links the line holds, so nothing is walked twice."""
from __future__ import annotations

import re

# a panel names at least one of these as a label: "Up: Implementation Issues Next: ..."
_PANEL = re.compile(r"^\W*(next|up|previous|prev|top|contents)\s*:", re.I)
_RETURN = re.compile(r"^\s*(return|back|go back) to\b", re.I)
_LINK_SHARE = 0.6   # a line this much link text, with two or more links, is a link bar
_MAX_WORDS = 30     # longer lines are prose that happens to cite, not a bar


def is_nav_line(text: str, links: int, link_chars: int) -> bool:
    """True for a navigation line: a panel, a "Return to" link, or a short bar of links."""
    if not links:
        return False
    words = text.split()
    if len(words) > _MAX_WORDS:
        return False
    if _PANEL.match(text) or _RETURN.match(text):
        return True
    nonspace = sum(len(w) for w in words)
    return links >= 2 and link_chars >= _LINK_SHARE * max(1, nonspace)
