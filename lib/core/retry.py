"""The one retry rule both HTTP clients follow (the scraper, the external-attention provider):
exponential backoff from ``base_s``; a server's Retry-After wins when it sends one; never more
than ``max_s``."""
from __future__ import annotations

import time
from email.utils import parsedate_to_datetime


def retry_after_s(value: str | None) -> float | None:
    """Seconds a Retry-After header asks for: a number of seconds or an HTTP date; None if absent
    or unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def backoff_s(attempt: int, base_s: float, max_s: float, retry_after: float | None = None) -> float:
    """The wait before retry number ``attempt`` (0 for the first retry)."""
    delay = base_s * 2 ** attempt if retry_after is None else retry_after
    return min(delay, max_s)
