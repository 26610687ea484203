"""One raw document to (title, normalised text) or a failure reason, by its sniffed type."""
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

_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.M)
_MD_LINK = re.compile(r"\[([^\]\n]*)\]\(([^)\s]*)\)|https?://\S+")
# What extraction can reject a document for (before any filter runs).
EXTRACT_REASONS = ("unsupported_type", "extract_error", "pdf_corrupt", "pdf_encrypted",
                   "pdf_scanned", "empty")


def markdown_link_chars(text: str) -> int:
    """Non-space characters in Markdown links and bare URLs (HTML counts its anchors instead)."""
    return sum(len("".join(m.group(0).split())) for m in _MD_LINK.finditer(text))


def extract(data: bytes, type_: str, content_type: str | None, p: CleanParams,
            stats: Counter) -> Extracted:
    if type_ == "html":
        got = extract_html(data, content_type, stats)
    elif type_ == "pdf":
        got = extract_pdf(data, stats, p.pdf_repeat_share, p.pdf_repeat_min_pages)
    elif type_ in ("text", "markdown"):
        text = decode(data, None, stats)
        got = Extracted("", text, markdown_link_chars(text))
    else:
        return Extracted("", "", reason="unsupported_type")
    if got.reason:
        return got
    text = normalise(got.text, stats)
    if type_ == "pdf":
        text = compose_accents(text, stats)
    if type_ in ("text", "markdown") and p.unwrap_lines:
        text = unwrap(text, stats)
    text = drop_leader_lines(fix_lookalikes(text, stats), stats)
    title = " ".join(normalise(got.title, Counter()).split())
    if not title:
        m = _HEADING.search(text)
        first = m.group(1) if m else next((ln for ln in text.split("\n") if ln.strip()), "")
        title = " ".join(first.split())[:200]
    return Extracted(title, text, got.link_chars, None if text.strip() else "empty", got.deck)


def read_raw(path: str) -> bytes | None:
    try:
        return Path(path).read_bytes()
    except OSError:
        return None
