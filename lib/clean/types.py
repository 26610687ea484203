"""The result every extractor (HTML, PDF, text) hands to the rest of the clean stage."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Extracted:
    title: str
    text: str
    link_chars: int = 0   # non-space characters inside links (for the link-list filter)
    reason: str | None = None
    deck: bool = False    # a slide deck: filters judge it as a deck, not as prose
