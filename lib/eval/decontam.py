"""Word n-gram overlap between documents and eval text, as GPT-3 and OLMo decontaminate.

Text is normalised to lowercase words (runs of letters, digits and underscores; punctuation and
spacing dropped), so a suite question pasted into a web page with other line breaks or quotes
still matches. An n-gram index is built once from the eval texts; each document is then checked
as it streams past, in time linear in its words. A text field shorter than n words contributes
no n-gram (a 5-word answer option alone is not evidence that a document holds the suite).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from lib.eval.params import EvalParams
from lib.eval.suite_text import suite_texts

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


@dataclass(frozen=True)
class Match:
    suite: str    # the suite (or LAMBADA file) name
    example: str  # the id of the suite record that holds the n-gram
    ngram: str    # the shared n-gram, normalised words joined by spaces


class NgramIndex:
    """The set of word n-grams of some eval texts, each remembering every (suite, example) that
    holds it (the first in ``grams``; the rare others in ``more``, to keep the common case small)."""

    def __init__(self, n: int):
        self.n = n
        self.grams: dict[tuple[str, ...], tuple[str, str]] = {}
        self.more: dict[tuple[str, ...], list[tuple[str, str]]] = {}
        self.vocab: set[str] = set()  # words of indexed n-grams: a cheap filter before a lookup

    def add(self, suite: str, example: str, text: str) -> None:
        ws = words(text)
        if len(ws) < self.n:
            return
        self.vocab.update(ws)
        owner = (suite, example)
        for i in range(len(ws) - self.n + 1):
            gram = tuple(ws[i:i + self.n])
            first = self.grams.setdefault(gram, owner)
            if first != owner and owner not in self.more.setdefault(gram, []):
                self.more[gram].append(owner)

    def __len__(self) -> int:
        return len(self.grams)

    def matches(self, text: str) -> Iterator[Match]:
        """Each distinct indexed n-gram of ``text`` (once per example that holds it), in order
        of first occurrence."""
        ws, run, seen = words(text), 0, set()
        for i, w in enumerate(ws):
            # an n-gram can only match where n consecutive words are all in the index's vocabulary
            run = run + 1 if w in self.vocab else 0
            if run < self.n:
                continue
            gram = tuple(ws[i - self.n + 1:i + 1])
            hit = self.grams.get(gram)
            if hit is not None and gram not in seen:
                seen.add(gram)
                for suite, example in [hit] + self.more.get(gram, []):
                    yield Match(suite, example, " ".join(gram))

    def first(self, text: str) -> Match | None:
        return next(self.matches(text), None)


def eval_sources(ev: EvalParams, skip: Iterable[str] = ()) -> list[tuple[str, str, str]]:
    """(name, path, params key) of every suite in eval.suites and every eval.lambada_files file,
    except the paths in ``skip`` (the corpus stage's own auto-built suite, which it writes)."""
    skipped = {Path(s).as_posix() for s in skip}
    out = [(s.name, s.path, f"eval.suites[{i}].path") for i, s in enumerate(ev.suites)]
    out += [(Path(f).stem, f, f"eval.lambada_files[{i}]") for i, f in enumerate(ev.lambada_files)]
    return [o for o in out if Path(o[1]).as_posix() not in skipped]


def build_index(sources: list[tuple[str, str, str]], n: int) -> NgramIndex:
    index = NgramIndex(n)
    for name, path, key in sources:
        for example, text in suite_texts(path, key):
            index.add(name, example, text)
    return index
