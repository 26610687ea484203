"""Document filters: one function per reject reason, in one list.

A filter takes the document (Doc) and the params and returns None when the document passes, else
a detail naming the measured value. Its name is the reject reason written to rejects.jsonl and
the counter in data/stats/clean.json, so adding a filter is adding a function to FILTERS (and its
threshold to CleanParams when it has one). Gopher-style ratios run on the prose outside code
blocks, after repeated lines were removed as boilerplate (see boilerplate.py); fenced code is
judged by its own rule (code_junk), so a listing's braces and operators never count against it.
"""
from __future__ import annotations

import itertools
import re
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from typing import Callable

import numpy as np

from lib.clean.config import CleanParams
from lib.clean.language import detect

GOPHER_STOP = frozenset("the be to of and that have with".split())
_BULLET = re.compile(r"^\s*([-*+\u2022\u2023\u25e6\u2043]|\d+[.)])\s")
_HEADING_MARK = re.compile(r"^#{1,6}\s", re.M)
_LETTERS = re.compile(r"[^\W\d_]+")
_P = np.uint64(1099511628211)
_FENCE = re.compile(r"^\s*(```|~~~)")
_BLOB = re.compile(r"\S{120,}")   # a token this long is data (base64, hex, minified), not code
_REPEATS = 10                    # ...and one line this often, half a block or more, is a loop of junk
_CODE_LINE_MAX = 400             # characters: a longer code line is generated, not written


@dataclass
class Doc:
    text: str                 # the whole text, code included, boilerplate removed
    prose: str                # the text outside fenced code blocks
    link_chars: int = 0       # non-space characters inside links
    boilerplate_chars: int = 0  # characters of the repeated lines removed before filtering
    relevance: float = 0.0    # domain terms per 1,000 words
    deck: bool = False        # a slide deck: bullets and short lines by nature

    @cached_property
    def code_blocks(self) -> list[list[str]]:
        """The non-blank lines of each fenced code block."""
        out: list[list[str]] = []
        in_code = False
        for ln in self.text.split("\n"):
            if _FENCE.match(ln):
                in_code = not in_code
                if in_code:
                    out.append([])
            elif in_code and ln.strip():
                out[-1].append(ln)
        return out

    @cached_property
    def words(self) -> list[str]:
        return self.prose.split()

    @cached_property
    def total_words(self) -> int:
        return len(self.text.split())

    @cached_property
    def lines(self) -> list[str]:
        return [ln for ln in self.prose.split("\n") if ln.strip()]


def link_list(d: Doc, p: CleanParams) -> str | None:
    ratio = d.link_chars / max(1, len(d.text) - sum(d.text.count(c) for c in " \n\t"))
    return f"{ratio:.3f} of characters in links" if ratio > p.max_link_ratio else None


def too_short(d: Doc, p: CleanParams) -> str | None:
    return f"{d.total_words} words" if d.total_words < p.min_words else None


def too_long(d: Doc, p: CleanParams) -> str | None:
    return f"{d.total_words} words" if d.total_words > p.max_words else None


def boilerplate(d: Doc, p: CleanParams) -> str | None:
    """Mostly repetition: most of the document's characters were repeated lines."""
    share = d.boilerplate_chars / max(1, d.boilerplate_chars + len(d.text))
    return f"{share:.3f} of characters repeated" if share > p.max_boilerplate_share else None


def language(d: Doc, p: CleanParams) -> str | None:
    lang, prob = detect(d.prose if d.words else d.text)
    return None if lang == p.language and prob >= p.min_language_score else f"{lang} {prob:.3f}"


def off_topic(d: Doc, p: CleanParams) -> str | None:
    if p.min_relevance > 0 and d.relevance < p.min_relevance:
        return f"{d.relevance:.2f} domain terms per 1000 words"
    return None


def mean_word_length(d: Doc, p: CleanParams) -> str | None:
    if not d.words:
        return None
    mean = sum(map(len, d.words)) / len(d.words)
    return None if p.min_mean_word_length <= mean <= p.max_mean_word_length else f"{mean:.2f}"


def alpha_ratio(d: Doc, p: CleanParams) -> str | None:
    """Letters among the prose's non-space characters. A deck has a lower bar: slides of short
    bullets, numbers and chart labels carry fewer letters than prose (its code is fenced and
    judged by code_junk)."""
    chars = "".join(d.words)
    if not chars:
        return None
    alpha = (len(chars) - len(_LETTERS.sub("", chars))) / len(chars)
    least = p.min_deck_alpha_ratio if d.deck else p.min_alpha_ratio
    return f"{alpha:.3f}" if alpha < least else None


def code_junk(d: Doc, p: CleanParams) -> str | None:
    """Code by its own rules (the prose rules never see it): a fenced block of data blobs,
    generated or minified lines, or one line repeated over and over is junk, not a listing.
    Real code repeats lines too ("}", "int sign, unsigned flags);" under each prototype), so a
    block is repetition only when one line of 8+ characters is half its lines."""
    chars = junk = 0
    for block in d.code_blocks:
        size = sum(map(len, block))
        chars += size
        counts = Counter(ln.strip() for ln in block if len(ln.strip()) >= 8)
        top = counts.most_common(1)[0][1] if counts else 0
        if top >= _REPEATS and top >= len(block) / 2:  # one line over and over: all of it junk
            junk += size
        else:
            junk += sum(len(ln) for ln in block if len(ln) > _CODE_LINE_MAX or _BLOB.search(ln))
    if chars < 200:
        return None
    share = junk / chars
    return f"{share:.3f} of code characters junk" if share > p.max_code_junk_share else None


def symbol_ratio(d: Doc, p: CleanParams) -> str | None:
    if not d.words:
        return None
    body = _HEADING_MARK.sub("", d.prose)
    ratio = (body.count("#") + body.count("...") + body.count("\u2026")) / len(d.words)
    return f"{ratio:.3f}" if ratio > p.max_symbol_ratio else None


def stop_words(d: Doc, p: CleanParams) -> str | None:
    if not d.words:
        return None
    present = GOPHER_STOP.intersection(w.lower() for w in d.words)
    return f"{len(present)} distinct" if len(present) < p.min_stop_words else None


def bullet_lines(d: Doc, p: CleanParams) -> str | None:
    if d.deck:  # a deck is bullets by nature; its letters and relevance judge it
        return None
    share = sum(1 for ln in d.lines if _BULLET.match(ln)) / max(1, len(d.lines))
    return f"{share:.3f}" if share > p.max_bullet_line_ratio else None


def ellipsis_lines(d: Doc, p: CleanParams) -> str | None:
    share = sum(1 for ln in d.lines if ln.rstrip().endswith(("...", "\u2026"))) / max(1, len(d.lines))
    return f"{share:.3f}" if share > p.max_ellipsis_line_ratio else None


def _ngram_ids(words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    vocab: dict[str, int] = {}
    ids = np.fromiter(map(vocab.setdefault, map(str.lower, words), itertools.count()), np.uint64,
                      len(words))
    return ids, np.fromiter(map(len, words), np.int64, len(words))


def _ngram_keys(ids: np.ndarray, n: int) -> np.ndarray:
    keys = np.zeros(len(ids) - n + 1, np.uint64)
    for i in range(n):  # polynomial hash, wrapping in uint64
        keys = keys * _P + ids[i:len(ids) - n + 1 + i] + np.uint64(1)
    return keys


def top_ngram(d: Doc, p: CleanParams) -> str | None:
    """Gopher: the characters of the most frequent n-gram's occurrences, as a share of all."""
    ids, lengths = _ngram_ids(d.words)
    total = max(1, int(lengths.sum()))
    for n, limit in sorted((int(k), v) for k, v in p.max_top_ngram_ratio.items()):
        if len(ids) < max(n, 2):
            continue
        _, first, counts = np.unique(_ngram_keys(ids, n), return_index=True, return_counts=True)
        best = int(np.argmax(counts))
        start = int(first[best])
        share = int(counts[best]) * int(lengths[start:start + n].sum()) / total
        if counts[best] >= 2 and share > limit:
            return f"{n}-gram {share:.3f}"
    return None


def dup_ngrams(d: Doc, p: CleanParams) -> str | None:
    """Gopher: the share of characters inside n-grams that occur more than once."""
    ids, lengths = _ngram_ids(d.words)
    total = max(1, int(lengths.sum()))
    for n, limit in sorted((int(k), v) for k, v in p.max_dup_ngram_ratio.items()):
        if len(ids) < max(n, 2):
            continue
        _, first, inverse = np.unique(_ngram_keys(ids, n), return_index=True, return_inverse=True)
        dup_starts = np.flatnonzero(first[inverse] != np.arange(len(inverse)))
        if not len(dup_starts):
            return None  # no repeated n-gram means no repeated longer one either
        cover = np.zeros(len(ids) + 1, np.int64)
        np.add.at(cover, dup_starts, 1)
        np.add.at(cover, dup_starts + n, -1)
        share = int(lengths[np.cumsum(cover)[:-1] > 0].sum()) / total
        if share > limit:
            return f"{n}-gram {share:.3f}"
    return None


# The order is the order they run in: cheap structural checks first, repetition last.
FILTERS: list[Callable[[Doc, CleanParams], str | None]] = [
    link_list, boilerplate, too_short, too_long, language, off_topic, mean_word_length,
    alpha_ratio, symbol_ratio, stop_words, bullet_lines, ellipsis_lines, code_junk, top_ngram,
    dup_ngrams]
REASONS = tuple(f.__name__ for f in FILTERS)


# Rules that judge prose. A listing with next to no prose around it (a source file's page, a
# page of shell commands) has none to judge: code_junk judges it, these are skipped.
PROSE_RULES = frozenset({language, mean_word_length, alpha_ratio, symbol_ratio, stop_words,
                         bullet_lines, ellipsis_lines, top_ngram, dup_ngrams})


def first_failure(d: Doc, p: CleanParams) -> tuple[str, str] | None:
    """(reason, detail) of the first filter the document fails, or None."""
    code_page = len(d.words) < p.min_words and bool(d.code_blocks)
    for f in FILTERS:
        if code_page and f in PROSE_RULES:
            continue
        detail = f(d, p)
        if detail is not None:
            return f.__name__, detail
    return None
