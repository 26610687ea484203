"""Tokenizer quality figures: bytes per token, tokens per word, domain terms kept whole."""
from __future__ import annotations

from typing import Iterable

from lib.tokenizer import Tokenizer


def tokenizer_metrics(tokenizer: Tokenizer, texts: Iterable[str], terms: list[str]) -> dict:
    """Figures over ``texts`` (streamed: the val split may be large) and the domain ``terms``."""
    n_tokens = n_bytes = n_words = n_unk = 0
    for text in texts:
        ids = tokenizer.encode(text)
        n_tokens += len(ids)
        n_unk += ids.count(tokenizer.unk_id)
        n_bytes += len(text.encode("utf-8"))
        n_words += len(text.split())
    unique_terms = sorted(set(terms))
    # a term is whole when it is one piece both at a text start and after a space (running text);
    # counted by ids, not piece spellings, so it holds for SentencePiece and byte-level BPE alike
    n_a = len(tokenizer.encode("a"))
    whole = sum(1 for t in unique_terms
                if len(tokenizer.encode(t)) == 1 and len(tokenizer.encode("a " + t)) == n_a + 1)
    return {
        "vocab_size": tokenizer.vocab_size,
        "val_tokens": n_tokens,
        "val_bytes_per_token": round(n_bytes / max(n_tokens, 1), 4),
        "val_tokens_per_word": round(n_tokens / max(n_words, 1), 4),
        "val_unk_tokens": n_unk,
        "domain_terms": len(unique_terms),
        "domain_terms_whole_share": round(whole / max(len(unique_terms), 1), 4),
    }
