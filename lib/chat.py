"""The one chat template, used identically for SFT training and for generation.

    <bos> [<|system|> text <|end|>] (<|user|> text <|end|> <|assistant|> text <|end|>)*

Role markers are control tokens inserted by id (text can never forge them). The training mask
marks every assistant content token and its closing <|end|>: the model learns to answer and to
stop, and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass

from lib.errors import UserError
from lib.tokenizer import Tokenizer

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    role: str
    content: str


def to_messages(record: dict, where: str) -> list[Message]:
    """Accept {"prompt","response"}, Alpaca {"instruction","input","output"} or {"messages": [...]}."""
    if "messages" in record:
        raw = record["messages"]
        if not isinstance(raw, list) or not raw:
            raise UserError(f"{where}: 'messages' must be a non-empty list of {{role, content}}")
        messages = []
        for i, m in enumerate(raw):
            if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
                raise UserError(f"{where}: messages[{i}] needs a role in {ROLES} and a string content")
            messages.append(Message(m["role"], m["content"]))
    elif "prompt" in record and "response" in record:
        messages = [Message("user", str(record["prompt"])), Message("assistant", str(record["response"]))]
    elif "instruction" in record and "output" in record:
        prompt = str(record["instruction"])
        if record.get("input"):
            prompt += "\n\n" + str(record["input"])
        messages = [Message("user", prompt), Message("assistant", str(record["output"]))]
    else:
        raise UserError(f"{where}: unknown record shape (keys {sorted(record)}); expected prompt/response, "
                        f"instruction/input/output or messages")
    body = [m for m in messages if m.role != "system"]
    if any(m.role == "system" for m in messages[1:]) or not body or body[0].role != "user" or \
            any(a.role == b.role for a, b in zip(body, body[1:])):
        raise UserError(f"{where}: messages must be an optional system message, then user and assistant turns "
                        f"alternating, starting with user")
    return messages


def encode_chat(tokenizer: Tokenizer, messages: list[Message],
                add_generation_prompt: bool = False) -> tuple[list[int], list[int]]:
    """Token ids of the conversation and a 0/1 mask of the tokens the SFT loss is taken on."""
    ids, mask = [tokenizer.bos_id], [0]
    end = tokenizer.marker("end")
    for m in messages:
        content = tokenizer.encode(m.content)
        learn = 1 if m.role == "assistant" else 0
        ids += [tokenizer.marker(m.role)] + content + [end]
        mask += [0] + [learn] * len(content) + [learn]
    if add_generation_prompt:
        ids.append(tokenizer.marker("assistant"))
        mask.append(0)
    return ids, mask


def decode_reply(tokenizer: Tokenizer, ids: list[int]) -> str:
    """Text of a generated reply, cut at the first <|end|> or EOS."""
    stops = {tokenizer.marker("end"), tokenizer.eos_id}
    out = []
    for i in ids:
        if i in stops:
            break
        out.append(i)
    return tokenizer.decode(out)
