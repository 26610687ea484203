"""Tokenizer quality figures: bytes per token, tokens per word, domain terms kept whole."""
from __future__ import annotations

from lib.tokenizer import Tokenizer


def tokenizer_metrics(tokenizer: Tokenizer, texts: list[str], terms: list[str]) -> dict:
    ids = tokenizer.encode_batch(texts)
    n_tokens = sum(len(x) for x in ids)
    n_bytes = sum(len(t.encode("utf-8")) for t in texts)
    n_words = sum(len(t.split()) for t in texts)
    unique_terms = sorted(set(terms))
    # a term is whole when, as a word of running text, it encodes to a single piece
    whole = sum(1 for t in unique_terms if len(tokenizer.encode(t)) == 1)
    return {
        "vocab_size": tokenizer.vocab_size,
        "val_tokens": n_tokens,
        "val_bytes_per_token": round(n_bytes / max(n_tokens, 1), 4),
        "val_tokens_per_word": round(n_tokens / max(n_words, 1), 4),
        "domain_terms": len(unique_terms),
        "domain_terms_whole_share": round(whole / max(len(unique_terms), 1), 4),
    }
