"""Greedy text samples from fixed prompts: greedy, so the samples of two runs at the same step
are comparable. Raw continuations here (a base model's view, what pretrain samples); a chat
model's replies through the template, which SFT and eval sample, are ``lib.infer.replies``, so
that an edit to the chat template does not rerun pretraining."""
from __future__ import annotations

from lib.infer.generate import generate


def continuations(model, tokenizer, prompts: list[str], max_new_tokens: int) -> dict[str, str]:
    """Each raw text prompt (after BOS) continued until EOS or ``max_new_tokens``: a base model's view."""
    out = {}
    for text in prompts:
        new = generate(model, [tokenizer.bos_id, *tokenizer.encode(text)], max_new_tokens, {tokenizer.eos_id})
        out[text] = tokenizer.decode(new)
    return out
