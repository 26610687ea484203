"""A document's relevance to the domain: how many of its words are domain terms, per 1,000
words. Cheap, explainable, and tuned by two term lists in params.yaml: clean.domain_terms (words
that name the domain, each counts 1) and clean.context_terms (words the domain uses constantly but
every software manual uses too, each counts clean.context_weight). One flat list let an XSLT
manual's "node" and "memory" outscore an FFTW page. The score is recorded for every document so a
threshold (clean.min_relevance) can be chosen from the data. It counts code as well as prose:
MPI_Allreduce in a listing says as much about the topic as the word in a sentence.
"""
from __future__ import annotations

import re

# Identifiers split at underscores and case is folded: MPI_Comm_rank counts for "mpi" and "rank".
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*")


def term_weights(domain: list[str], context: list[str], context_weight: float) -> dict[str, float]:
    """Each term's weight, lower-cased; a word in both lists counts as a domain term."""
    weights = {t.lower(): context_weight for t in context}
    weights.update({t.lower(): 1.0 for t in domain})
    return weights


def relevance(text: str, weights: dict[str, float]) -> float:
    """Weighted domain terms per 1,000 words of the text."""
    tokens = _TOKEN.findall(text)
    if not tokens:
        return 0.0
    hits = sum(weights.get(t.lower(), 0.0) for t in tokens)
    return round(1000 * hits / len(tokens), 2)
