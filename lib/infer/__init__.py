"""Inference: generation over the KV cache, sampling, and the chat template."""
