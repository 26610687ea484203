"""A document's relevance to the domain: how many of its words are domain terms, per 1,000
words. Cheap, explainable, and tuned by the term list in params.yaml (clean.domain_terms); it is
recorded for every kept document so a threshold (clean.min_relevance) can be chosen from the data.
It counts code as well as prose: MPI_Allreduce in a listing says as much about the topic as the
word in a sentence.
"""
from __future__ import annotations

import re

# Identifiers split at underscores and case is folded: MPI_Comm_rank counts for "mpi" and "rank".
_TOKEN = re.compile(r"[A-Za-z][A-Za-z0-9]*")


def relevance(text: str, terms: frozenset[str]) -> float:
    """Domain terms per 1,000 words of the text."""
    tokens = _TOKEN.findall(text)
    if not tokens:
        return 0.0
    hits = sum(1 for t in tokens if t.lower() in terms)
    return round(1000 * hits / len(tokens), 2)
