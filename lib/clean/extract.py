"""One raw document to (title, normalised text) or a failure reason, by its format.

The format's record (lib/formats/registry.py) names its extractor and post-processing steps;
the built-in formats' ones are below, each with the one signature the registry expects.
"""
from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from lib.clean.config import CleanParams
from lib.clean.html import extract_html
from lib.clean.lookalikes import fix_lookalikes
from lib.clean.pdf import extract_pdf
from lib.clean.text import compose_accents, decode, normalise, unwrap
from lib.clean.toc import drop_leader_lines
from lib.clean.types import Extracted
from lib.formats.registry import FORMATS, load

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)
_MD_LINK = re.compile(r"\[([^\]\n]*)\]\(([^)\s]*)\)|https?://\S+")


def reasons() -> tuple[str, ...]:
    """What extraction can reject a document for (before any filter runs): the common reasons
    and each registered format's own."""
    own = [r for fmt in FORMATS.values() for r in fmt.reasons]
    return ("unsupported_type", "extract_error", *own, "empty")


def markdown_link_chars(text: str) -> int:
    """Non-space characters in Markdown links and bare URLs (HTML counts its anchors instead)."""
    return sum(len("".join(m.group(0).split())) for m in _MD_LINK.finditer(text))


def extract(data: bytes, type_: str, content_type: str | None, p: CleanParams,
            stats: Counter) -> Extracted:
    fmt = FORMATS.get(type_)
    if fmt is None:
        return Extracted("", "", reason="unsupported_type")
    got = load(fmt.extract)(data, content_type, p, stats)
    if got.reason:
        return got
    text = normalise(got.text, stats)
    for step in fmt.post:
        text = load(step)(text, p, stats)
    # every format: look-alike characters and dot-leader lines (lib/clean/lookalikes.py, toc.py)
    text = drop_leader_lines(fix_lookalikes(text, stats), stats)
    title = " ".join(normalise(got.title, Counter()).split())
    if not title:
        m = _HEADING.search(text)
        first = m.group(1) if m else next((ln for ln in text.split("\n") if ln.strip()), "")
        title = " ".join(first.split())[:200]
    return Extracted(title, text, got.link_chars, None if text.strip() else "empty", got.deck)


def html(data: bytes, content_type: str | None, p: CleanParams, stats: Counter) -> Extracted:
    return extract_html(data, content_type, stats)


def pdf(data: bytes, content_type: str | None, p: CleanParams, stats: Counter) -> Extracted:
    return extract_pdf(data, stats, p.pdf_repeat_share, p.pdf_repeat_min_pages)


def plain_text(data: bytes, content_type: str | None, p: CleanParams, stats: Counter) -> Extracted:
    """Text and Markdown: decoded as they are; their links count for the link-list filter."""
    text = decode(data, None, stats)
    return Extracted("", text, markdown_link_chars(text))


def accents(text: str, p: CleanParams, stats: Counter) -> str:
    """PDF text from TeX: a spacing accent next to a letter becomes the accented letter."""
    return compose_accents(text, stats)


def unwrap_lines(text: str, p: CleanParams, stats: Counter) -> str:
    """Hard-wrapped plain text: lines of one paragraph joined, when ``unwrap_lines`` asks."""
    return unwrap(text, stats) if p.unwrap_lines else text


def read_raw(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError:
        return None
