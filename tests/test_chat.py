"""The chat template: record shapes, the token-by-token loss mask, the round trip, and that the
prompt used for generation is exactly the training encoding up to the assistant's reply."""
from __future__ import annotations

import pytest

from tests.fixtures_tiny import tiny_tokenizer
from lib.tokenizer.chat import Message, decode_chat, decode_reply, encode_chat, prompt_ids, to_messages
from lib.core.errors import UserError

SYSTEM = Message("system", "You are a concise HPC assistant.")
CONVERSATION = [SYSTEM, Message("user", "What does MPI rank mean?"), Message("assistant", "The rank of a process."),
                Message("user", "And a node?"), Message("assistant", "One machine with 64 cores.")]


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def test_record_shapes():
    assert to_messages({"prompt": "p", "response": "r"}, "f:1") == [Message("user", "p"), Message("assistant", "r")]
    alpaca = to_messages({"instruction": "Fix it.", "input": "x = 1", "output": "x = 2"}, "f:2")
    assert alpaca == [Message("user", "Fix it.\n\nx = 1"), Message("assistant", "x = 2")]
    assert to_messages({"instruction": "Do.", "input": "", "output": "Done."}, "f:3")[0].content == "Do."
    raw = [{"role": m.role, "content": m.content} for m in CONVERSATION]
    assert to_messages({"messages": raw}, "f:4") == CONVERSATION


@pytest.mark.parametrize("record, words", [
    ({"text": "hello"}, "unknown record shape"),
    ({"prompt": "p", "response": 3}, "'response' must be a non-empty string"),
    ({"prompt": "", "response": "r"}, "'prompt' must be a non-empty string"),
    ({"messages": []}, "non-empty list"),
    ({"messages": [{"role": "bot", "content": "x"}]}, "messages[0] needs a role"),
    ({"messages": [{"role": "assistant", "content": "x"}]}, "starting with user"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}, "alternating"),
    ({"messages": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]}, "optional system"),
])
def test_bad_records_name_file_and_line(record, words):
    with pytest.raises(UserError) as err:
        to_messages(record, "data.jsonl:7")
    assert str(err.value).startswith("data.jsonl:7: ") and words in str(err.value)


def test_mask_token_by_token(tok):
    ids, mask = encode_chat(tok, CONVERSATION)
    assert len(ids) == len(mask)
    end, markers = tok.marker("end"), {tok.marker(r): r for r in ("system", "user", "assistant")}
    # Walk the encoding and work out independently which role each token belongs to.
    assert ids[0] == tok.bos_id and mask[0] == 0
    role, learned = None, {"system": 0, "user": 0, "assistant": 0}
    for token, m in zip(ids[1:], mask[1:]):
        if token in markers:
            role = markers[token]
            assert m == 0, "a role marker is never a target"
        elif token == end:
            assert m == (1 if role == "assistant" else 0), f"the end marker of a {role} turn"
            learned[role] += m
        else:
            assert m == (1 if role == "assistant" else 0), f"a {role} content token"
            learned[role] += m
    assistant_tokens = sum(len(tok.encode(msg.content)) + 1 for msg in CONVERSATION if msg.role == "assistant")
    assert learned == {"system": 0, "user": 0, "assistant": assistant_tokens}
    assert sum(mask) == assistant_tokens


def test_template_round_trip(tok):
    ids, _ = encode_chat(tok, CONVERSATION)
    assert decode_chat(tok, ids) == CONVERSATION
    tricky = [Message("user", "  spaces\tand\nlines ∑ é <|user|> "), Message("assistant", "ok <|end|>")]
    ids, mask = encode_chat(tok, tricky)
    assert decode_chat(tok, ids) == tricky
    # text cannot forge a role marker: the only marker ids are the ones the template inserted
    assert ids.count(tok.marker("user")) == 1 and ids.count(tok.marker("end")) == 2


def test_generation_prompt_is_the_training_prefix(tok):
    """The model sees at generation exactly what it saw in training before each reply."""
    full, mask = encode_chat(tok, CONVERSATION)
    prompt = prompt_ids(tok, CONVERSATION[:-1])
    assert full[:len(prompt)] == prompt and prompt[-1] == tok.marker("assistant")
    assert mask[len(prompt) - 1] == 0 and all(mask[len(prompt):])
    reply = full[len(prompt):]
    assert decode_reply(tok, reply) == CONVERSATION[-1].content


def test_prompt_ids_drops_oldest_turns_but_keeps_system(tok):
    long = [SYSTEM] + [Message("user" if i % 2 == 0 else "assistant", f"turn {i} " + "MPI rank " * 5)
                       for i in range(9)]
    full = prompt_ids(tok, long)
    fitted = prompt_ids(tok, long, max_len=len(full) - 10, reserve=4)
    assert len(fitted) + 4 <= len(full) - 10
    kept = decode_chat(tok, fitted)
    assert kept[0] == SYSTEM and kept[-2] == long[-1] and kept[1].role == "user"
