"""Inference: generation over the KV cache, sampling, and greedy samples (raw continuations, chat replies)."""
