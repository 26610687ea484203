"""Document quality rules (Gopher-style quality and repetition, link lists, language).

Each check returns None when the document passes, else (reason, detail) where detail names the
measured value, so a reject can be explained.
"""
from __future__ import annotations

import itertools
import re

import numpy as np

from lib.clean.config import CleanParams
from lib.clean.language import detect

GOPHER_STOP = frozenset("the be to of and that have with".split())
_BULLET = re.compile(r"^\s*([-*+\u2022\u2023\u25e6\u2043]|\d+[.)])\s")
_HEADING_MARK = re.compile(r"^#{1,6}\s", re.M)
_MD_LINK = re.compile(r"\[([^\]\n]*)\]\(([^)\s]*)\)|https?://\S+")
_P = np.uint64(1099511628211)
_LETTERS = re.compile(r"[^\W\d_]+")


def markdown_link_chars(text: str) -> int:
    """Non-space characters in Markdown links and bare URLs (HTML counts its anchors instead)."""
    return sum(len("".join(m.group(0).split())) for m in _MD_LINK.finditer(text))


def length(total_words: int, p: CleanParams) -> tuple[str, str] | None:
    """Length counts the whole text (code included)."""
    if total_words < p.min_words:
        return "too_short", f"{total_words} words"
    if total_words > p.max_words:
        return "too_long", f"{total_words} words"
    return None


def gopher_quality(prose: str, words: list[str], p: CleanParams) -> tuple[str, str] | None:
    """Gopher ratios on the prose outside code blocks, when there is any."""
    n = len(words)
    if n == 0:
        return None
    mean = sum(len(w) for w in words) / n
    if not p.min_mean_word_length <= mean <= p.max_mean_word_length:
        return "mean_word_length", f"{mean:.2f}"
    chars = "".join(words)
    alpha = (len(chars) - len(_LETTERS.sub("", chars))) / max(1, len(chars))
    if alpha < p.min_alpha_ratio:
        return "alpha_ratio", f"{alpha:.3f}"
    body = _HEADING_MARK.sub("", prose)
    symbols = (body.count("#") + body.count("...") + body.count("\u2026")) / n
    if symbols > p.max_symbol_ratio:
        return "symbol_ratio", f"{symbols:.3f}"
    present = GOPHER_STOP.intersection(w.lower() for w in words)
    if len(present) < p.min_stop_words:
        return "stop_words", f"{len(present)} distinct"
    lines = [ln for ln in prose.split("\n") if ln.strip()]
    if lines:
        bullets = sum(1 for ln in lines if _BULLET.match(ln)) / len(lines)
        if bullets > p.max_bullet_line_ratio:
            return "bullet_lines", f"{bullets:.3f}"
        ellipsis = sum(1 for ln in lines if ln.rstrip().endswith(("...", "\u2026"))) / len(lines)
        if ellipsis > p.max_ellipsis_line_ratio:
            return "ellipsis_lines", f"{ellipsis:.3f}"
    return None


def _dup_share(items: list[str]) -> tuple[float, float]:
    """(share of items repeating an earlier one, share of their characters)."""
    seen: set[str] = set()
    dup = dup_chars = total_chars = 0
    for item in items:
        total_chars += len(item)
        if item in seen:
            dup += 1
            dup_chars += len(item)
        else:
            seen.add(item)
    return dup / max(1, len(items)), dup_chars / max(1, total_chars)


def repetition(prose: str, words: list[str], p: CleanParams) -> tuple[str, str] | None:
    # paragraphs first: a repeated block is reported as such, not as its repeated lines
    paras = [" ".join(par.split()) for par in re.split(r"\n\s*\n", prose) if par.strip()]
    share, chars = _dup_share(paras)
    if share > p.max_dup_para_ratio or chars > p.max_dup_para_char_ratio:
        return "dup_paragraphs", f"{share:.3f} of paragraphs, {chars:.3f} of chars"
    lines = [ln.strip() for ln in prose.split("\n") if ln.strip()]
    share, chars = _dup_share(lines)
    if share > p.max_dup_line_ratio or chars > p.max_dup_line_char_ratio:
        return "dup_lines", f"{share:.3f} of lines, {chars:.3f} of chars"
    if len(words) < 2:
        return None
    vocab: dict[str, int] = {}
    ids = np.fromiter(map(vocab.setdefault, map(str.lower, words), itertools.count()), np.uint64,
                      len(words))
    lengths = np.fromiter(map(len, words), np.int64, len(words))
    total = int(lengths.sum())
    for n, limit in sorted((int(k), v) for k, v in p.max_top_ngram_ratio.items()):
        if len(words) < n:
            continue
        keys = _ngram_keys(ids, n)
        _, first, counts = np.unique(keys, return_index=True, return_counts=True)
        best = int(np.argmax(counts))
        if counts[best] < 2:
            continue
        start = int(first[best])
        share = int(counts[best]) * int(lengths[start:start + n].sum()) / total
        if share > limit:
            return "top_ngram", f"{n}-gram {share:.3f}"
    for n, limit in sorted((int(k), v) for k, v in p.max_dup_ngram_ratio.items()):
        if len(words) < n:
            continue
        keys = _ngram_keys(ids, n)
        _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        dup_starts = np.flatnonzero(first[inverse] != np.arange(len(keys)))
        if not len(dup_starts):
            break  # no repeated n-gram means no repeated longer one either
        cover = np.zeros(len(words) + 1, np.int64)
        np.add.at(cover, dup_starts, 1)
        np.add.at(cover, dup_starts + n, -1)
        covered = np.cumsum(cover)[:-1] > 0
        share = int(lengths[covered].sum()) / total
        if share > limit:
            return "dup_ngrams", f"{n}-gram {share:.3f}"
    return None


def _ngram_keys(ids: np.ndarray, n: int) -> np.ndarray:
    keys = np.zeros(len(ids) - n + 1, np.uint64)
    for i in range(n):  # polynomial hash, wrapping in uint64
        keys = keys * _P + ids[i:len(ids) - n + 1 + i] + np.uint64(1)
    return keys


def link_list(nonspace_chars: int, link_chars: int, p: CleanParams) -> tuple[str, str] | None:
    ratio = link_chars / max(1, nonspace_chars)
    if ratio > p.max_link_ratio:
        return "link_list", f"{ratio:.3f} of characters in links"
    return None


def language(prose: str, p: CleanParams) -> tuple[str, str] | None:
    lang, score = detect(prose)
    if lang != p.language or score < p.min_language_score:
        return "language", f"{lang} {score:.3f}"
    return None
