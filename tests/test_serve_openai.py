"""The server through the official `openai` client: chat, streaming, completions, seeds, stop
strings, concurrency, and errors surfaced as openai exceptions."""
from __future__ import annotations

import concurrent.futures

import pytest

openai = pytest.importorskip("openai", reason="the dev group's `openai` package (uv sync --group dev)")

from lib.tokenizer.chat import Message, decode_reply, encode_chat, stop_ids  # noqa: E402
from lib.infer.generate import generate  # noqa: E402
from tests.serve_fixtures import NAME, running, tiny_served  # noqa: E402

QUESTION = "What does the MPI rank send?"


@pytest.fixture(scope="module")
def served():
    s = tiny_served()
    with running(s) as url:
        yield s, openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=30)


def _reference_chat(s, text: str, max_tokens: int, **sampling) -> str:
    ids, _ = encode_chat(s.tokenizer, [Message("user", text)], add_generation_prompt=True)
    out = generate(s.engine.model, ids, max_tokens, stop_ids(s.tokenizer), **sampling)
    return decode_reply(s.tokenizer, out)


def test_models_lists_the_served_model(served):
    s, client = served
    assert [m.id for m in client.models.list()] == [NAME]


def test_chat_greedy_equals_the_engine_alone(served):
    s, client = served
    r = client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": QUESTION}],
                                       max_tokens=20, temperature=0)
    assert r.choices[0].message.role == "assistant"
    assert r.choices[0].message.content == _reference_chat(s, QUESTION, 20, temperature=0.0)
    assert r.choices[0].finish_reason in ("stop", "length")
    assert r.usage.completion_tokens >= 1 and r.usage.prompt_tokens > 5


def test_streaming_chat_pieces_add_up_to_the_whole(served):
    s, client = served
    kwargs = dict(model=NAME, messages=[{"role": "user", "content": QUESTION}], max_tokens=20, temperature=0)
    whole = client.chat.completions.create(**kwargs).choices[0].message.content
    chunks = list(client.chat.completions.create(stream=True, stream_options={"include_usage": True}, **kwargs))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= 2  # streamed, not in one piece
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] in ("stop", "length")
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens >= 2


def test_completions_continue_raw_text(served):
    s, client = served
    prompt = "the MPI rank sends a message to"
    r = client.completions.create(model=NAME, prompt=prompt, max_tokens=12, temperature=0)
    ids = [s.tokenizer.bos_id] + s.tokenizer.encode(prompt)
    assert r.choices[0].text == s.tokenizer.decode(generate(s.engine.model, ids, 12, {s.tokenizer.eos_id}))
    streamed = "".join(c.choices[0].text for c in client.completions.create(
        model=NAME, prompt=prompt, max_tokens=12, temperature=0, stream=True))
    assert streamed == r.choices[0].text


def test_seeded_sampling_repeats_and_stop_strings_cut(served):
    s, client = served
    kwargs = dict(model=NAME, prompt="OpenMP threads", max_tokens=30, temperature=1.0, top_p=0.9, seed=7)
    a, b = (client.completions.create(**kwargs).choices[0].text for _ in range(2))
    assert a == b
    ids = [s.tokenizer.bos_id] + s.tokenizer.encode("OpenMP threads")
    ref = s.tokenizer.decode(generate(s.engine.model, ids, 30, {s.tokenizer.eos_id}, temperature=1.0, top_p=0.9, seed=7))
    assert a == ref
    stop = a[len(a) // 2:len(a) // 2 + 2]
    cut = client.completions.create(stop=[stop], **kwargs).choices[0]
    assert cut.text == a[:a.find(stop)] and cut.finish_reason == "stop"


def test_concurrent_streams_are_batched_and_match_sequential(served):
    s, client = served
    questions = [f"{QUESTION} node {i}" for i in range(8)]

    def ask(q):
        stream = client.chat.completions.create(model=NAME, messages=[{"role": "user", "content": q}],
                                                max_tokens=24, temperature=0, stream=True)
        return "".join(c.choices[0].delta.content or "" for c in stream if c.choices)

    s.engine.peak_batch = 0
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(ask, questions))
    assert answers == [_reference_chat(s, q, 24, temperature=0.0) for q in questions]
    assert s.engine.peak_batch > 1


@pytest.mark.parametrize("kwargs, param", [
    (dict(max_tokens=0), "max_tokens"),
    (dict(max_tokens=65), "max_tokens"),              # over the context of 64
    (dict(temperature=3.0), "temperature"),
    (dict(messages=[{"role": "assistant", "content": "hi"}]), "messages"),
    (dict(messages=[{"role": "user", "content": "MPI " * 80}]), "messages"),  # prompt over the context
])
def test_bad_requests_raise_bad_request(served, kwargs, param):
    _, client = served
    args = dict(model=NAME, messages=[{"role": "user", "content": QUESTION}], max_tokens=4) | kwargs
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(**args)
    assert err.value.status_code == 400 and err.value.param == param


def test_unknown_model_raises_not_found(served):
    _, client = served
    with pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-4", messages=[{"role": "user", "content": "hi"}])
    assert err.value.code == "model_not_found"


def test_api_key_required():
    s = tiny_served(api_key="sesame")
    with running(s) as url:
        wrong = openai.OpenAI(base_url=url + "/v1", api_key="nope", max_retries=0)
        with pytest.raises(openai.AuthenticationError):
            wrong.models.list()
        right = openai.OpenAI(base_url=url + "/v1", api_key="sesame", max_retries=0)
        assert [m.id for m in right.models.list()] == [NAME]
