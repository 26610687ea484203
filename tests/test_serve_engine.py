"""The continuous-batching engine: rows that join a running batch and leave it early still get
exactly the tokens ``generate`` gives them alone (greedy and seeded sampling), stop ids and
budgets end rows, and a cancelled job frees its row."""
from __future__ import annotations

import random
import threading
import time

from lib.infer.generate import generate
from lib.infer.sampling import SamplingParams
from lib.serve.engine import Engine, Job
from tests.fixtures_tiny import hpc_sentences, tiny_model, tiny_tokenizer


def _job(prompt, max_tokens, stops, sampling, seed, results, key, done):
    out = []

    def emit(token):
        if token is None:
            results[key] = out
            done.release()
        else:
            out.append(token)
    return Job(prompt, max_tokens, frozenset(stops), sampling, seed, emit)


def test_staggered_jobs_equal_generation_alone():
    tok = tiny_tokenizer()
    model = tiny_model(tok.vocab_size, spread=20.0, max_seq_len=64)
    engine = Engine(model, max_batch=6)  # fewer rows than jobs: some wait for a free row
    rng = random.Random(0)
    prompts = [[tok.bos_id] + tok.encode(s)[:rng.randint(1, 40)] for s in hpc_sentences(24)]
    samplings = [SamplingParams(), SamplingParams(temperature=0.8, top_k=20), SamplingParams(temperature=1.2, top_p=0.8)]
    stops = {tok.eos_id, tok.encode("node")[-1]}
    results, done, jobs = {}, threading.Semaphore(0), []
    for i, prompt in enumerate(prompts):
        job = _job(prompt, 5 + 2 * i, stops, samplings[i % 3], 100 + i, results, i, done)
        jobs.append(job)
        engine.submit(job)
        time.sleep(rng.random() * 0.01)  # arrive while others run
    for _ in prompts:
        assert done.acquire(timeout=60)
    for i, job in enumerate(jobs):
        s = job.sampling
        ref = generate(model, prompts[i], 5 + 2 * i, stops, s.temperature, s.top_k, 100 + i, s.top_p)
        assert results[i] == ref, i
        assert job.finish in ("stop", "length")
    assert 1 < engine.peak_batch <= 6
    # a prompt that nearly fills the context: it stops at the context's end, not at max_tokens
    long = [tok.bos_id] + tok.encode(" ".join(hpc_sentences(20)))[:61]
    job = _job(long, 50, set(), SamplingParams(), 0, results, "long", done)
    engine.submit(job)
    assert done.acquire(timeout=30)
    assert len(results["long"]) == 64 + 1 - len(long) and job.finish == "length"
    engine.close()


def test_cancel_frees_the_row():
    tok = tiny_tokenizer()
    model = tiny_model(tok.vocab_size, spread=20.0, max_seq_len=64)
    model.register_forward_pre_hook(lambda *_: time.sleep(0.01))
    engine = Engine(model)
    results, done = {}, threading.Semaphore(0)
    a = _job([tok.bos_id] + tok.encode("the MPI rank"), 60, set(), SamplingParams(), 0, results, "a", done)
    b = _job([tok.bos_id] + tok.encode("OpenMP"), 60, set(), SamplingParams(), 0, results, "b", done)
    engine.submit(a)
    engine.submit(b)
    while len(engine.rows) < 2:
        time.sleep(0.005)
    a.cancel()
    assert done.acquire(timeout=5)
    assert a.finish == "cancelled" and len(results["a"]) < 60
    deadline = time.monotonic() + 2  # the row goes at the end of the step that saw the cancel
    while len(engine.rows) != 1 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert len(engine.rows) == 1 and engine.rows[0].job is b  # b goes on alone
    assert done.acquire(timeout=30)
    assert b.finish == "length" and results["b"] == generate(model, b.prompt, 60, set())
    engine.close()


def test_a_failing_forward_ends_its_jobs_and_the_engine_goes_on():
    tok = tiny_tokenizer()
    model = tiny_model(tok.vocab_size, spread=20.0)
    broken = {"prefill": True, "step": False}

    def fail(_, args):
        kind = "prefill" if args[0].shape[1] > 1 else "step"
        if broken[kind]:
            raise RuntimeError(f"injected {kind} failure")
    model.register_forward_pre_hook(fail)
    engine = Engine(model)
    results, done = {}, threading.Semaphore(0)
    prompt = [tok.bos_id] + tok.encode("the MPI rank")
    for key, breaks in (("prefill", {"prefill": True, "step": False}), ("step", {"prefill": False, "step": True}),
                        ("fine", {"prefill": False, "step": False})):
        broken.update(breaks)
        job = _job(prompt, 8, set(), SamplingParams(), 0, results, key, done)
        engine.submit(job)
        assert done.acquire(timeout=10), key
        assert job.finish == ("length" if key == "fine" else "error"), key
    assert results["fine"] == generate(model, prompt, 8, set())
    engine.close()
