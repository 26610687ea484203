"""The automatic domain cloze suite: LAMBADA-style passages cut from held-out documents so that
each ends on a mined domain term (MPI_Allreduce, NUMA, cudaMemcpy).

A passage is a few consecutive prose sentences (headings, code and table rows break it) of at
most ``max_words`` words, cut right before a domain term; the term, with its leading space, is
the target. The term must end the word (AVX in "AVX-512" is not a target), so greedy decoding of
the target is a fair test. Unlike LAMBADA, the target need not occur earlier in the passage: a
domain cloze asks what the model knows ("a nonblocking send is posted with MPI_Isend"), and on
the shipped sample that condition kept a third of the passages. Passages do not overlap.
Which passages are kept is decided by a hash of their text alone, so adding a document never
swaps the others out.
"""
from __future__ import annotations

import hashlib
import heapq
import re
from dataclasses import dataclass
from typing import Iterable, Iterator

MIN_CONTEXT_WORDS = 30  # shorter contexts say too little to predict a term from
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(A-Z0-9])")
_FENCE = re.compile(r"^\s*(```|~~~)")
_WORD_END = set(" \t.,;:!?)]'\"")
_NOT_PROSE = re.compile(r"^(\s{4,}|\t|#{1,6}\s|\||[-=*_]{3,}\s*$|\$ |>>> )")


@dataclass(frozen=True)
class Passage:
    key: str      # SHA-256 of context and target: the order in which passages are kept
    context: str
    target: str   # " Term": the leading space belongs to the target, as in LAMBADA

    def record(self) -> dict:
        return {"id": self.key[:16], "context": self.context, "target": self.target}


def prose_blocks(text: str) -> Iterator[str]:
    """Runs of prose lines joined by spaces; code (fenced or indented), headings, table rows,
    rules and shell prompts end a run."""
    block: list[str] = []
    in_fence = False
    for line in text.splitlines():
        if _FENCE.match(line):
            in_fence = not in_fence
        if in_fence or _FENCE.match(line) or _NOT_PROSE.match(line) or not line.strip():
            if block:
                yield " ".join(block)
            block = []
            continue
        block.append(line.strip())
    if block:
        yield " ".join(block)


def term_pattern(terms: Iterable[str]) -> re.Pattern | None:
    """Whole-word occurrences of the terms, not inside a dotted name or path (x.GPU, a_b.txt);
    the same boundaries lib.corpus mines terms with. None for no terms."""
    alternatives = "|".join(re.escape(t) for t in sorted(set(terms), key=lambda t: (-len(t), t)))
    return re.compile(rf"(?<![\w./])(?:{alternatives})(?!\w|[./]\w)") if alternatives else None


def _last_term(sentence: str, terms: re.Pattern) -> re.Match | None:
    """The last domain term of ``sentence`` that follows a space and ends a word (then a space,
    punctuation or the end); None when there is none."""
    for m in reversed(list(terms.finditer(sentence))):
        after = sentence[m.end():m.end() + 1]
        if m.start() > 0 and sentence[m.start() - 1] == " " and (not after or after in _WORD_END):
            return m
    return None


def passages(text: str, terms: re.Pattern, max_words: int) -> Iterator[Passage]:
    """The non-overlapping cloze passages of one document, in document order."""
    for block in prose_blocks(text):
        window: list[str] = []
        for sentence in _SENTENCE_END.split(block):
            term = _last_term(sentence, terms)
            if term is not None:
                head = sentence[:term.start() - 1]
                while window and len(" ".join(window + [head]).split()) >= max_words:
                    window.pop(0)  # the earliest sentences go first: the passage ends at the term
                context = " ".join(window + [head]).strip()
                if MIN_CONTEXT_WORDS <= len(context.split()) < max_words:
                    target = " " + term.group()
                    key = hashlib.sha256(f"{context}\x00{target}".encode("utf-8")).hexdigest()
                    yield Passage(key, context, target)
                    window = []
                    continue
            window.append(sentence)
            while window and len(" ".join(window).split()) >= max_words:
                window.pop(0)


class Candidates:
    """At most ``limit`` passages, those with the smallest keys: bounded memory however many
    held-out documents there are, and a choice fixed by content."""

    def __init__(self, limit: int):
        self.limit = limit
        self._heap: list[tuple[int, Passage]] = []  # (-key as a number, passage): largest key on top
        self._keys: set[str] = set()
        self.seen = 0

    def add(self, items: Iterable[Passage]) -> None:
        for p in items:
            self.seen += 1
            if p.key in self._keys or self.limit == 0:
                continue  # the same passage in two documents is one example
            entry = (-int(p.key, 16), p)
            if len(self._heap) < self.limit:
                heapq.heappush(self._heap, entry)
            elif entry[0] > self._heap[0][0]:
                self._keys.discard(heapq.heapreplace(self._heap, entry)[1].key)
            else:
                continue
            self._keys.add(p.key)

    def sorted(self) -> list[Passage]:
        return sorted((p for _, p in self._heap), key=lambda p: p.key)
