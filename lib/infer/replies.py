"""Greedy replies of a chat model to fixed conversations, through the chat template: the samples
SFT and eval take (greedy, so two runs' replies are comparable)."""
from __future__ import annotations

from lib.infer.generate import generate
from lib.tokenizer.chat import Message, decode_reply, prompt_ids, stop_ids


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
