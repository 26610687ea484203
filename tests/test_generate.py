"""Generation over the KV cache: equals a full recompute, batched equals one at a time (left
padding, per-row positions and masks), stops, the context limit, and streamed decoding."""
from __future__ import annotations

import dataclasses

import pytest
import torch

from tests.fixtures_tiny import tiny_model, tiny_tokenizer
from lib.infer.generate import StreamDecoder, cut_at_stop, generate, generate_batch, stream
from lib.model.config import ModelConfig
from lib.infer.sampling import SamplingParams


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


@pytest.fixture(scope="module")
def model(tok):
    return tiny_model(tok.vocab_size, spread=10.0)


def prompts(tok) -> list[list[int]]:
    texts = ["the MPI rank", "OpenMP threads share the loop iterations of a parallel region", "a", "GPU"]
    return [[tok.bos_id] + tok.encode(t) for t in texts]


@torch.no_grad()
def naive_greedy(model, prompt: list[int], n: int) -> list[int]:
    """No cache: the whole sequence through the model for every token."""
    ids = list(prompt)
    for _ in range(n):
        logits, _ = model(torch.tensor([ids]))
        ids.append(int(logits[0, -1].argmax()))
    return ids[len(prompt):]


def test_greedy_equals_argmax_of_a_full_recompute(tok, model):
    for p in prompts(tok):
        assert generate(model, p, 12, set()) == naive_greedy(model, p, 12)


@pytest.mark.parametrize("sampling", [
    SamplingParams(),
    SamplingParams(temperature=1.0),
    SamplingParams(temperature=0.8, top_k=5, top_p=0.9, repetition_penalty=1.3),
])
def test_batched_equals_one_at_a_time(tok, model, sampling):
    ps = prompts(tok)
    seeds = [11, 12, 13, 14]
    batched = generate_batch(model, ps, 10, {tok.eos_id}, sampling, seeds)
    alone = [list(stream(model, p, 10, {tok.eos_id}, sampling, s)) for p, s in zip(ps, seeds)]
    assert batched == alone
    assert sum(len(b) for b in batched) > 20


@pytest.mark.parametrize("variant", [{"n_kv_head": 1}, {"positions": "learned"}, {"positions": "none"}])
def test_batched_equals_one_at_a_time_for_model_variants(tok, variant):
    if "positions" in variant and "positions" not in {f.name for f in dataclasses.fields(ModelConfig)}:
        pytest.skip("this model has RoPE only")
    model = tiny_model(tok.vocab_size, spread=10.0, **variant)
    ps = prompts(tok)
    assert generate_batch(model, ps, 6, set()) == [generate(model, p, 6, set()) for p in ps]


def test_batched_rows_stop_independently(tok, model):
    ps = prompts(tok)
    free = generate_batch(model, ps, 8, set())
    stop = {free[1][2]}  # a token row 1 produces third
    stopped = generate_batch(model, ps, 8, stop)
    for row, ids in enumerate(free):
        cut = next((i for i, t in enumerate(ids) if t in stop), len(ids))
        assert stopped[row] == ids[:cut]
    assert len(stopped[1]) <= 2


def test_stop_strings(tok, model):
    p = prompts(tok)[0]
    free = generate(model, p, 30, set())
    text = tok.decode(free)
    stop = text[len(text) // 2: len(text) // 2 + 2]
    assert stop.strip(), text
    ids = generate(model, p, 30, set(), stop_strings=[stop], tokenizer=tok)
    assert ids == free[:len(ids)] and len(ids) < len(free)
    assert stop in tok.decode(ids) and stop not in tok.decode(ids[:-1])
    assert cut_at_stop(tok.decode(ids), [stop]) == text[:text.find(stop)]


def test_max_new_tokens_and_context_limit(tok):
    model = tiny_model(tok.vocab_size, max_seq_len=16, spread=10.0)
    p = [tok.bos_id] + tok.encode("the MPI rank")
    assert len(generate(model, p, 3, set())) == 3
    # as many tokens as the context allows (the last is chosen but never fed back)
    assert len(generate(model, p, 100, set())) == 16 + 1 - len(p)
    long = [tok.bos_id] + tok.encode("the MPI rank sends a message to every node " * 4)
    assert len(long) > 16 and generate(model, long, 5, set()) == generate(model, long[-16:], 5, set())
    both = generate_batch(model, [p, p[:3]], 100, set())
    assert [len(b) for b in both] == [17 - len(p), 14]
    assert both[1] == generate(model, p[:3], 100, set())


def test_seeded_sampling(tok, model):
    p = prompts(tok)[1]
    a = generate(model, p, 15, set(), temperature=1.5, seed=1)
    assert a == generate(model, p, 15, set(), temperature=1.5, seed=1)
    assert a != generate(model, p, 15, set(), temperature=1.5, seed=2)


@pytest.mark.parametrize("text", ["the MPI rank sends ∑ é and GPU", "日本 ∑∑ é", "plain ascii only"])
def test_stream_decoder_across_byte_pieces(tok, text):
    ids = tok.encode(text)
    decoder = StreamDecoder(tok)
    pieces = [decoder.push(i) for i in ids] + [decoder.flush()]
    assert "".join(pieces) == tok.decode(ids) == text
    assert not any("\ufffd" in p for p in pieces), "a half character was printed"


def test_stream_decoder_holds_back_stop_strings(tok):
    ids = tok.encode("the MPI rank sends STOP a message")
    decoder = StreamDecoder(tok, ["STOP", "never"])
    pieces = []
    for i in ids:
        pieces.append(decoder.push(i))
        if decoder.stopped:
            break
    pieces.append(decoder.flush())
    assert "".join(pieces) == "the MPI rank sends " and decoder.stopped


def test_stream_decoder_on_model_output(tok, model):
    """Random-model output is full of byte pieces: streaming still prints exactly the decoded text."""
    ids = generate(model, prompts(tok)[2], 40, set(), temperature=1.0, seed=3)
    decoder = StreamDecoder(tok)
    assert "".join([decoder.push(i) for i in ids] + [decoder.flush()]) == tok.decode(ids)
