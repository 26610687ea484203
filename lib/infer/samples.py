"""Greedy text samples from fixed prompts, the one way pretrain, SFT and eval take them: greedy, so
the samples of two runs at the same step are comparable."""
from __future__ import annotations

from lib.infer.chat import Message, decode_reply, prompt_ids, stop_ids
from lib.infer.generate import generate


def continuations(model, tokenizer, prompts: list[str], max_new_tokens: int) -> dict[str, str]:
    """Each raw text prompt (after BOS) continued until EOS or ``max_new_tokens``: a base model's view."""
    out = {}
    for text in prompts:
        new = generate(model, [tokenizer.bos_id, *tokenizer.encode(text)], max_new_tokens, {tokenizer.eos_id})
        out[text] = tokenizer.decode(new)
    return out


def replies(model, tokenizer, conversations: list[list[Message]], max_new_tokens: int) -> dict[str, str]:
    """The assistant's reply to each conversation (keyed by its last user message), through the
    chat template: a chat model's view."""
    out = {}
    for messages in conversations:
        ids = generate(model, prompt_ids(tokenizer, messages), max_new_tokens, stop_ids(tokenizer))
        out[messages[-1].content] = decode_reply(tokenizer, ids)
    return out


def ask(prompts: list[str]) -> list[list[Message]]:
    """One single-turn conversation per prompt."""
    return [[Message("user", p)] for p in prompts]
