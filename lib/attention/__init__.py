"""Attention from an outside scorer: the ``external`` experiment mode (see README 'External attention').

    attn = wrap_for_external(model, load_attention_params(), tokenizer)   # learned mode: a no-op
    ...train or generate as usual...
    metrics.update(attn.metrics())
"""
from lib.attention.cache import ScoreCache, cache_key
from lib.attention.external import (AttentionSource, ExternalAttention, ExternalAttentionRun, LearnedAttention,
                                    install_external_attention, normalise, wrap_for_external)
from lib.attention.params import AttentionParams, HttpParams, attention_for_model, load_attention_params
from lib.attention.providers import (AttentionError, BadReply, HttpProvider, LocalProvider, Provider,
                                     ProviderFailure, attention_maps, make_provider)

__all__ = ["AttentionError", "AttentionParams", "AttentionSource", "BadReply", "ExternalAttention",
           "ExternalAttentionRun", "HttpParams", "HttpProvider", "LearnedAttention", "LocalProvider", "Provider",
           "ProviderFailure", "ScoreCache", "attention_for_model", "attention_maps", "cache_key", "install_external_attention",
           "load_attention_params", "make_provider", "normalise", "wrap_for_external"]
