"""Corpus assembly: a deterministic train/val split by content hash and domain-term mining.

The split of a document depends only on its own text (and the seed), so adding a document never
moves another one between splits. Two streaming passes keep memory flat: the first computes the
split keys and term counts, the second writes the files.
"""
from __future__ import annotations

import hashlib
import re
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from lib.core.progress import progress

from lib.core.errors import UserError
from lib.core.io import JsonlWriter, atomic_write_text, iter_jsonl
from lib.core.params import check

# an identifier-shaped word, not part of a dotted name, path or file name (x.GPU, a_b.txt)
_TOKEN = re.compile(r"(?<![\w./])[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*(?!\w|[./]\w)")
_CAMEL = re.compile(r"[a-z][A-Z]|[A-Z]{2,}[a-z]{2,}")
_ALLCAPS = re.compile(r"^[A-Z][A-Z0-9]*[A-Z][A-Z0-9]*$")
_HEADING = re.compile(r"^#{1,6}\s.*$", re.M)  # headings shout (OVERVIEW); skip them


@dataclass
class CorpusParams:
    val_fraction: float = 0.1      # share of documents (by content hash) in val
    min_term_count: int = 3        # a mined term occurs at least this often in the corpus
    max_terms: int = 64            # at most this many terms for the tokenizer
    min_term_docs: int = 2         # ... and in at least this many documents
    min_term_length: int = 3       # shorter tokens (e.g. "IO") are left to the tokenizer
    max_term_length: int = 40
    clean_docs: str = "data/clean/docs.jsonl"
    out_dir: str = "data/corpus"

    def __post_init__(self) -> None:
        check(0.0 <= self.val_fraction < 1.0, "val_fraction", "must be in [0, 1)")
        check(self.min_term_count >= 1, "min_term_count", "must be >= 1")
        check(self.max_terms >= 0, "max_terms", "must be >= 0")
        check(self.min_term_docs >= 1, "min_term_docs", "must be >= 1")
        check(1 <= self.min_term_length <= self.max_term_length, "min_term_length",
              "must be >= 1 and <= max_term_length")


def split_key(text: str, seed: int) -> float:
    """A number in [0, 1) fixed by the text and the seed alone."""
    digest = hashlib.sha256(f"{seed}\x00{text}".encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def is_term(token: str) -> bool:
    """CamelCase (OpenMP, cudaMemcpy), ALLCAPS (NUMA, AVX512) or snake identifiers (MPI_Allreduce)."""
    if "_" in token:
        return any(ch.isalpha() for ch in token)
    return bool(_CAMEL.search(token) or _ALLCAPS.match(token))


def doc_terms(text: str, p: CorpusParams) -> Counter:
    counts = Counter(t for t in _TOKEN.findall(_HEADING.sub("", text))
                     if p.min_term_length <= len(t) <= p.max_term_length and is_term(t))
    return counts


def select_terms(counts: Counter, docs: Counter, p: CorpusParams) -> list[str]:
    ok = [t for t, n in counts.items() if n >= p.min_term_count and docs[t] >= p.min_term_docs]
    return sorted(ok, key=lambda t: (-counts[t], t))[: p.max_terms]


def assign_splits(keys: list[float], val_fraction: float) -> list[str]:
    """val when key < val_fraction; with >= 2 documents at least one is val and one is train
    (the lowest / highest key is moved, so the exception is also fixed by content)."""
    splits = ["val" if k < val_fraction else "train" for k in keys]
    if len(keys) >= 2 and val_fraction > 0:
        if "val" not in splits:
            splits[min(range(len(keys)), key=keys.__getitem__)] = "val"
        if "train" not in splits:
            splits[max(range(len(keys)), key=keys.__getitem__)] = "train"
    return splits


def build(p: CorpusParams, seed: int) -> dict:
    src = Path(p.clean_docs)
    if not src.exists():
        raise UserError(f"{src}: not found; run the clean stage first (dvc repro clean)")
    keys, counts, docs = [], Counter(), Counter()
    for _, rec in progress(iter_jsonl(src), desc="corpus: scan", unit="doc"):
        text = rec.get("text")
        if not isinstance(text, str):
            raise UserError(f"{src}: a record has no 'text' string; rerun the clean stage")
        keys.append(split_key(text, seed))
        found = doc_terms(text, p)
        counts.update(found)
        docs.update(found.keys())
    if not keys:
        raise UserError(f"{src}: no documents; add sources to scrape.sources or relax clean filters")
    splits = assign_splits(keys, p.val_fraction)
    stats = {s: Counter() for s in ("train", "val")}
    out = Path(p.out_dir)
    with JsonlWriter(out / "train.jsonl") as train, JsonlWriter(out / "val.jsonl") as val:
        for (_, rec), split in zip(iter_jsonl(src), splits):
            (train if split == "train" else val).write(rec)
            stats[split]["docs"] += 1
            stats[split]["chars"] += len(rec["text"])
            stats[split]["words"] += len(rec["text"].split())
    terms = select_terms(counts, docs, p)
    atomic_write_text(out / "terms.txt", "".join(t + "\n" for t in terms))
    return {**{s: {k: c.get(k, 0) for k in ("docs", "chars", "words")} for s, c in stats.items()},
            "docs": len(keys), "terms": len(terms), "top_terms": terms[:10]}
