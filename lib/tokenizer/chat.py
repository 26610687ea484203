"""The one chat template, used identically for SFT training and for generation.

    <bos> [<|system|> text <|end|>] (<|user|> text <|end|> <|assistant|> text <|end|>)*

Role markers are control tokens inserted by id (text can never forge them). The training mask
marks every assistant content token and its closing <|end|>: the model learns to answer and to
stop, and nothing else.
"""
from __future__ import annotations

from dataclasses import dataclass

from lib.core.errors import UserError
from lib.tokenizer import Tokenizer

ROLES = ("system", "user", "assistant")


@dataclass(frozen=True)
class Message:
    role: str
    content: str


def to_messages(record: dict, where: str) -> list[Message]:
    """Accept {"prompt","response"}, Alpaca {"instruction","input","output"} or {"messages": [...]}
    (an optional system message, then user and assistant turns alternating, starting with user).
    Anything else raises a UserError that starts with ``where`` (file:line)."""
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
        messages = [Message("user", _text(record, "prompt", where)),
                    Message("assistant", _text(record, "response", where))]
    elif "instruction" in record and "output" in record:
        prompt = _text(record, "instruction", where)
        extra = record.get("input")
        if extra is not None and not isinstance(extra, str):
            raise UserError(f"{where}: 'input' must be a string, got {type(extra).__name__}")
        if extra:
            prompt += "\n\n" + extra
        messages = [Message("user", prompt), Message("assistant", _text(record, "output", where))]
    else:
        raise UserError(f"{where}: unknown record shape (keys {sorted(record)}); expected prompt/response, "
                        f"instruction/input/output or messages")
    body = [m for m in messages if m.role != "system"]
    if any(m.role == "system" for m in messages[1:]) or not body or body[0].role != "user" or \
            any(a.role == b.role for a, b in zip(body, body[1:])):
        raise UserError(f"{where}: messages must be an optional system message, then user and assistant turns "
                        f"alternating, starting with user")
    return messages


def _text(record: dict, key: str, where: str) -> str:
    value = record[key]
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{where}: '{key}' must be a non-empty string")
    return value


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


def stop_ids(tokenizer: Tokenizer) -> set[int]:
    """The ids that end an assistant turn: the template's <|end|> marker, and EOS."""
    return {tokenizer.marker("end"), tokenizer.eos_id}


def decode_reply(tokenizer: Tokenizer, ids: list[int]) -> str:
    """Text of a generated reply, cut at the first <|end|> or EOS."""
    stops = stop_ids(tokenizer)
    out = []
    for i in ids:
        if i in stops:
            break
        out.append(i)
    return tokenizer.decode(out)


def decode_chat(tokenizer: Tokenizer, ids: list[int]) -> list[Message]:
    """The messages of a conversation encoded by ``encode_chat`` (the template's inverse)."""
    roles = {tokenizer.marker(r): r for r in ROLES}
    end = tokenizer.marker("end")
    if not ids or ids[0] != tokenizer.bos_id:
        raise ValueError("a chat encoding starts with BOS")
    messages, i = [], 1
    while i < len(ids):
        if ids[i] not in roles:
            raise ValueError(f"expected a role marker at {i}, got id {ids[i]}")
        try:
            j = ids.index(end, i + 1)
        except ValueError:  # an open turn (a generation prompt or an unfinished reply)
            j = len(ids)
        messages.append(Message(roles[ids[i]], tokenizer.decode(ids[i + 1:j])))
        i = j + 1
    return messages


def prompt_ids(tokenizer: Tokenizer, messages: list[Message], max_len: int | None = None,
               reserve: int = 0) -> list[int]:
    """The ids that ask the model for the next assistant turn. With ``max_len``, the oldest
    user/assistant exchanges are left out (the system message is kept) until the prompt plus
    ``reserve`` tokens for the reply fit."""
    system = [m for m in messages[:1] if m.role == "system"]
    body = messages[len(system):]
    while True:
        ids, _ = encode_chat(tokenizer, system + body, add_generation_prompt=True)
        if max_len is None or len(ids) + reserve <= max_len or len(body) <= 1:
            return ids
        body = body[2:] if len(body) > 2 else body[-1:]
