"""Corpus assembly: a deterministic train/val/held-out split by content hash, domain-term
mining, decontamination against the eval suites and the automatic domain cloze suite.

The split of a document depends only on its own text (and the seed), so adding a document never
moves another one between splits. Three streaming passes keep memory flat: the first computes the
split keys and term counts and checks each document against the eval suites' n-grams (built once);
the second cuts cloze passages from the held-out documents; the third writes the splits and drops
any passage that shares an n-gram with a training document.
"""
from __future__ import annotations

import fnmatch
import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Sequence

from lib.core.progress import progress

from lib.core.errors import UserError
from lib.core.io import JsonlWriter, atomic_write_text, iter_jsonl
from lib.core.params import check
from lib.corpus_cloze import Candidates, passages, term_pattern
from lib.eval.decontam import NgramIndex, build_index

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
    # decontamination: training documents sharing a word n-gram with an eval suite
    decontam: Literal["remove", "flag", "off"] = "remove"  # flag: keep them, but name them
    decontam_ngram: int = 13       # GPT-3 / OLMo: 13 normalised lowercase words
    # the held-out documents of the automatic domain cloze suite (neither train nor val)
    heldout_fraction: float = 0.1  # share of documents, by a content hash apart from val's
    heldout_sources: list[str] = field(default_factory=list)  # globs over `source`; set: these instead
    cloze_max_passages: int = 500  # data/corpus/domain_cloze.jsonl holds at most this many
    cloze_max_words: int = 200     # words per passage
    clean_docs: str = "data/clean/docs.jsonl"
    out_dir: str = "data/corpus"

    def __post_init__(self) -> None:
        check(0.0 <= self.val_fraction < 1.0, "val_fraction", "must be in [0, 1)")
        check(self.min_term_count >= 1, "min_term_count", "must be >= 1")
        check(self.max_terms >= 0, "max_terms", "must be >= 0")
        check(self.min_term_docs >= 1, "min_term_docs", "must be >= 1")
        check(1 <= self.min_term_length <= self.max_term_length, "min_term_length",
              "must be >= 1 and <= max_term_length")
        check(self.decontam_ngram >= 1, "decontam_ngram", "must be >= 1 (13 is the usual choice)")
        check(0.0 <= self.heldout_fraction < 1.0 and self.heldout_fraction + self.val_fraction < 1.0,
              "heldout_fraction", "must be in [0, 1) and leave documents for train beside val_fraction")
        check(self.cloze_max_passages >= 0, "cloze_max_passages", "must be >= 0")
        check(self.cloze_max_words >= 40, "cloze_max_words", "must be >= 40 (passages need context)")

    @property
    def cloze_path(self) -> Path:
        """The auto-built suite; list it in eval.suites (kind cloze) to score it."""
        return Path(self.out_dir) / "domain_cloze.jsonl"


def split_key(text: str, seed: int, salt: str = "") -> float:
    """A number in [0, 1) fixed by the text and the seed alone; another ``salt`` gives an
    independent number (the held-out key, so held-out and val do not select the same documents)."""
    digest = hashlib.sha256(f"{salt}{seed}\x00{text}".encode("utf-8")).digest()
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



ROLES = ("train", "val", "heldout")  # where a document goes; "removed": nowhere (contaminated)


@dataclass
class Scan:
    """What the first pass learns, a few numbers per document."""
    keys: list[float] = field(default_factory=list)   # val split key
    hkeys: list[float] = field(default_factory=list)  # held-out key
    named: list[bool] = field(default_factory=list)   # source matches corpus.heldout_sources
    removed: set[int] = field(default_factory=set)
    contaminated: int = 0
    counts: Counter = field(default_factory=Counter)  # term occurrences
    docs: Counter = field(default_factory=Counter)    # documents per term
    globs_hit: set[str] = field(default_factory=set)


def scan(src: Path, p: CorpusParams, seed: int, suites: NgramIndex, flagged: JsonlWriter) -> Scan:
    """Split keys, term counts and contamination of every document, in one streaming pass;
    contaminated documents are named in ``flagged`` as they are found."""
    s = Scan()
    for i, (lineno, rec) in enumerate(progress(iter_jsonl(src), desc="corpus: scan", unit="doc")):
        text = rec.get("text")
        if not isinstance(text, str):
            raise UserError(f"{src}:{lineno}: a record has no 'text' string; rerun the clean stage")
        source = str(rec.get("source", ""))
        match = suites.first(text) if p.decontam != "off" and len(suites) else None
        if match is not None:
            s.contaminated += 1
            flagged.write({"id": rec.get("id"), "source": source, "suite": match.suite,
                           "example": match.example, "ngram": match.ngram,
                           "action": "removed" if p.decontam == "remove" else "flagged"})
            if p.decontam == "remove":
                s.removed.add(i)
        s.keys.append(split_key(text, seed))
        s.hkeys.append(split_key(text, seed, "heldout"))
        hits = {g for g in p.heldout_sources if fnmatch.fnmatchcase(source, g)}
        s.globs_hit |= hits
        s.named.append(bool(hits))
        if i not in s.removed:
            found = doc_terms(text, p)
            s.counts.update(found)
            s.docs.update(found.keys())
    return s


def assign_roles(s: Scan, p: CorpusParams, src: Path) -> list[str]:
    """train / val / heldout / removed per document. Held out: the documents whose source matches
    corpus.heldout_sources, else those whose held-out key < heldout_fraction (at least one of
    three or more); the rest are split into train and val as before."""
    missed = [g for g in p.heldout_sources if g not in s.globs_hit]
    if missed:
        raise UserError(f"corpus.heldout_sources: '{missed[0]}' matches no document source in {src}; "
                        f"fix the glob (sources look like data/sample/docs/text/x.md)")
    live = [i for i in range(len(s.keys)) if i not in s.removed]
    if p.heldout_sources:
        held = {i for i in live if s.named[i]}
    else:
        held = {i for i in live if s.hkeys[i] < p.heldout_fraction}
        if not held and p.heldout_fraction > 0 and len(live) >= 3:
            held = {min(live, key=s.hkeys.__getitem__)}
    rest = [i for i in live if i not in held]
    if not rest:
        raise UserError(f"{src}: no document is left for training (held out: {len(held)}, "
                        f"contaminated and removed: {len(s.removed)}); hold out fewer documents")
    roles = ["removed"] * len(s.keys)
    for i in held:
        roles[i] = "heldout"
    for i, split in zip(rest, assign_splits([s.keys[i] for i in rest], p.val_fraction)):
        roles[i] = split
    return roles


def cloze_candidates(src: Path, roles: list[str], terms: list[str], p: CorpusParams) -> Candidates:
    """Passages of the held-out documents, twice the cap, so that dropping the few that overlap
    train still leaves the cap."""
    cands = Candidates(2 * p.cloze_max_passages)
    pattern = term_pattern(terms)
    if pattern is not None and "heldout" in roles:
        for (_, rec), role in zip(iter_jsonl(src), roles):
            if role == "heldout":
                cands.add(passages(rec["text"], pattern, p.cloze_max_words))
    return cands


def write_splits(src: Path, roles: list[str], out: Path, cloze: NgramIndex) -> tuple[dict, set[str]]:
    """Write train/val/heldout.jsonl; return their counts and the cloze passages (ids) that share
    an n-gram with a training document."""
    stats = {r: Counter() for r in ROLES}
    overlap: set[str] = set()
    with JsonlWriter(out / "train.jsonl") as train, JsonlWriter(out / "val.jsonl") as val, \
            JsonlWriter(out / "heldout.jsonl") as heldout:
        writers = {"train": train, "val": val, "heldout": heldout}
        for (_, rec), role in zip(iter_jsonl(src), roles):
            if role == "removed":
                continue
            writers[role].write(rec)
            stats[role]["docs"] += 1
            stats[role]["chars"] += len(rec["text"])
            stats[role]["words"] += len(rec["text"].split())
            if role == "train" and len(cloze):
                overlap.update(m.example for m in cloze.matches(rec["text"]))
    return {r: {k: c.get(k, 0) for k in ("docs", "chars", "words")} for r, c in stats.items()}, overlap


def build(p: CorpusParams, seed: int, suites: Sequence[tuple[str, str, str]] = ()) -> dict:
    """The corpus stage's work. ``suites``: (name, path, params key) of the eval files to
    decontaminate against (lib.eval.decontam.eval_sources)."""
    src, out = Path(p.clean_docs), Path(p.out_dir)
    if not src.exists():
        raise UserError(f"{src}: not found; run the clean stage first (dvc repro clean)")
    index = build_index(list(suites), p.decontam_ngram) if p.decontam != "off" else NgramIndex(p.decontam_ngram)
    with JsonlWriter(out / "contaminated.jsonl") as flagged:
        s = scan(src, p, seed, index, flagged)
    if not s.keys:
        raise UserError(f"{src}: no documents; add sources to scrape.sources or relax clean filters")
    roles = assign_roles(s, p, src)
    terms = select_terms(s.counts, s.docs, p)
    cands = cloze_candidates(src, roles, terms, p)
    cloze = NgramIndex(p.decontam_ngram)
    for c in cands.sorted():
        cloze.add("domain_cloze", c.key[:16], c.context + c.target)
    stats, overlap = write_splits(src, roles, out, cloze)
    kept = [c for c in cands.sorted() if c.key[:16] not in overlap][: p.cloze_max_passages]
    with JsonlWriter(p.cloze_path) as w:
        for c in kept:
            w.write(c.record())
    atomic_write_text(out / "terms.txt", "".join(t + "\n" for t in terms))
    return {**stats, "docs": len(s.keys), "terms": len(terms), "top_terms": terms[:10],
            "decontam": {"ngram": p.decontam_ngram, "suite_ngrams": len(index), "contaminated": s.contaminated,
                         "removed": len(s.removed)},
            "domain_cloze": {"passages": len(kept), "candidates": cands.seen, "train_overlap": len(overlap)}}
