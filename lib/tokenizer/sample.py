"""The tokenizer's training input: documents cut into pieces (``training_sentences``) and a seeded
uniform sample of ``size`` of them, in corpus order.

The sample is a bottom-k sample: each piece gets a key, a hash of (seed, document number, piece
number), and the ``size`` pieces with the smallest keys are kept. A key depends on nothing but
the piece's position, so the sample can be drawn in parallel over chunks of the corpus and is the
same for any chunking, worker count or engine: ``sample_texts`` draws it in this process,
``lib.tokenizer.sample_corpus`` on the data engine. SentencePiece's own sampler is not used: it
ignores ``set_random_generator_seed``, and a fresh process would draw another sample.
"""
from __future__ import annotations

import hashlib
import heapq
from typing import Iterable, Iterator


def training_sentences(texts: Iterable[str], max_bytes: int) -> Iterator[str]:
    """Cut documents into pieces of at most ``max_bytes`` UTF-8 bytes at line ends (a longer line
    after its last space), keeping the newlines so the tokenizer learns them. SentencePiece drops
    a sentence over its length limit, and samples by sentence -- so whole documents would make
    long documents vanish and the sample's memory unbounded."""
    for text in texts:
        piece, size = [], 0
        for line in text.splitlines(keepends=True):
            n = len(line.encode("utf-8"))
            if size + n > max_bytes and piece:
                yield "".join(piece)
                piece, size = [], 0
            while n > max_bytes:  # one overlong line (minified code, a table): cut after a space
                head = line.encode("utf-8")[:max_bytes].decode("utf-8", errors="ignore")
                cut = head.rfind(" ") + 1 or len(head)
                yield line[:cut]
                line = line[cut:]
                n = len(line.encode("utf-8"))
            piece.append(line)
            size += n
        if piece:
            yield "".join(piece)


def piece_key(seed: int, doc: int, piece: int) -> int:
    """A uniform 64-bit key for piece ``piece`` of document ``doc`` (its 0-based position)."""
    digest = hashlib.blake2b(f"{seed}:{doc}:{piece}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def keyed_pieces(docs: Iterable[tuple[int, str]], max_bytes: int, seed: int) -> Iterator[tuple[int, int, int, str]]:
    """(key, document, piece number, piece) for each piece of each (position, text) document."""
    for doc, text in docs:
        for i, piece in enumerate(training_sentences([text], max_bytes)):
            yield piece_key(seed, doc, i), doc, i, piece


def in_corpus_order(kept: Iterable[tuple[int, int, int, str]], size: int) -> list[str]:
    """The ``size`` smallest (key, doc, piece) of ``kept`` (all when size is 0), in corpus order."""
    chosen = list(kept) if size == 0 else heapq.nsmallest(size, kept)
    return [piece for _, _, _, piece in sorted(chosen, key=lambda k: (k[1], k[2]))]


def sample_texts(texts: Iterable[str], size: int, max_bytes: int, seed: int) -> list[str]:
    """The sample of the pieces of ``texts`` (the n-th text is document n), in this process, in
    O(size) memory; ``size`` 0 keeps every piece."""
    return in_corpus_order(keyed_pieces(enumerate(texts), max_bytes, seed), size)
