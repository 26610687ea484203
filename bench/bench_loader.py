"""Benchmark: the training loader's cost per batch against one training step, and its memory.

    uv run python -m bench.bench_loader [--tokens 20000000] [--steps 20]

Writes synthetic shards (random ids, documents of 50-2000 tokens) to a temp dir and prints JSON:

- microseconds per ``TrainWindows.batch`` at the pretrain stage's seq_len/batch_size and at a
  GPU-sized one (1024 x 32), windows crossing documents and kept inside them;
- the baseline: one training step of the pretrain stage's model on this machine, in this run,
  as the library takes it (lib.train.loop.Stepper: forward, backward, clipping, and the optimizer
  params.yaml's pretrain section names, Muon+AdamW by default); goal: a batch under 1% of a step;
- with ``Prefetcher`` (a background thread; 2 worker processes) the time a step waits for its
  batch -- for processes, the hand-over through shared memory;
- resident memory after 1,000 and after 30,000 batches (goal: no growth).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lib.data.prefetch import Prefetcher  # noqa: E402
from lib.data.windows import TrainWindows  # noqa: E402
from lib.core.io import write_json  # noqa: E402
from lib.data.shards import META_FILE, SplitWriter, open_split  # noqa: E402

VOCAB = 2048


def make_shards(root: Path, n_tokens: int) -> list:
    rng = np.random.default_rng(0)
    writer = SplitWriter(root / "train", "uint16", 10_000_000, VOCAB, "00" * 32)
    written = 0
    while written < n_tokens:
        lengths = rng.integers(50, 2000, size=1000)
        tokens = rng.integers(8, VOCAB, size=int(lengths.sum()), dtype=np.uint16)
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        tokens[starts], tokens[starts + lengths - 1] = 2, 3  # BOS, EOS
        writer.add_docs(tokens, lengths)
        written += len(tokens)
    write_json(root / META_FILE, {"vocab_size": VOCAB, "tokenizer_sha256": "00" * 32, "dtype": "uint16",
                                  "bos_id": 2, "eos_id": 3, "splits": {"train": writer.close()}})
    return open_split(root / "train", "00" * 32)


def us_per_batch(windows: TrainWindows, n: int = 2000) -> float:
    for i in range(100):
        windows.batch(i)  # warm up: page cache, allocator
    started = time.perf_counter()
    for i in range(n):
        windows.batch(i)
    return (time.perf_counter() - started) / n * 1e6


def rss_mb() -> dict:
    fields = {}
    with open("/proc/self/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                fields[key] = round(int(value.split()[0]) / 1024, 1)
    return fields


def pretrain_params():
    """The pretrain stage's params (model, seq_len, batch_size, optimizer), defaults if unreadable."""
    from lib.core.params import load_section
    from lib.train.pretrain import PretrainParams
    try:
        return load_section("pretrain", PretrainParams, ROOT / "params.yaml")
    except Exception as err:  # the bench must not break with another section's schema
        print(f"note: pretrain params unreadable ({err}); using PretrainParams' defaults", file=sys.stderr)
        return PretrainParams()


def step_seconds(params, windows: TrainWindows, steps: int) -> float:
    """Median seconds of the library's training step (batches built beforehand, not timed)."""
    from bench.stepping import make_stepper
    from lib.model.gpt import GPT
    model = GPT(replace(params.model, vocab_size=VOCAB))
    batches = [windows.batch(i) for i in range(steps + 3)]
    stepper = make_stepper(model, replace(params, compile=False), torch.device("cpu"), batches.__getitem__,
                           steps=params.steps, desc="bench_loader")
    times = [stepper(i).seconds for i in range(steps + 3)]
    return float(np.median(times[3:]))  # after warm-up


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=20_000_000)
    ap.add_argument("--steps", type=int, default=10)
    args = ap.parse_args()
    params = pretrain_params()
    seq_len, batch_size = params.seq_len, params.batch_size
    # one thread: on a shared, loaded machine more threads spin and make the step (the baseline)
    # slower and noisier, which would flatter the loader's share
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        shards = make_shards(Path(tmp), args.tokens)
        small = TrainWindows(shards, seq_len, batch_size, seed=0)
        figures = {
            "shard_tokens": sum(len(s.tokens) for s in shards),
            "seq_len": seq_len, "batch_size": batch_size,
            "us_per_batch": round(us_per_batch(small), 1),
            "us_per_batch_inside_documents": round(us_per_batch(
                TrainWindows(shards, seq_len, batch_size, seed=0, cross_documents=False)), 1),
            "us_per_batch_1024x32": round(us_per_batch(TrainWindows(shards, 1024, 32, seed=0), 500), 1),
        }
        step = step_seconds(params, small, args.steps)
        figures["train_step_ms"] = round(step * 1e3, 2)
        figures["optimizer"] = params.optimizer
        figures["batch_share_of_step"] = round(figures["us_per_batch"] * 1e-6 / step, 5)

        # what a step waits for its batch when a thread or worker processes build batches ahead
        for name, workers in (("prefetch_thread_wait_us", 0), ("prefetch_2_processes_wait_us", 2)):
            prefetch = Prefetcher(small, num_workers=workers)
            waits = []
            for i in range(60):
                started = time.perf_counter()
                prefetch(i)
                waits.append(time.perf_counter() - started)
                time.sleep(0.02)  # the step the prefetching overlaps with
            prefetch.close()
            figures[name] = round(float(np.median(waits[10:])) * 1e6, 1)

        # resident memory over a long run: file pages are dropped at each remap, anon must not grow
        long = TrainWindows(shards, seq_len, batch_size, seed=1)
        for i in range(1000):
            long.batch(i)
        figures["rss_after_1k_batches_mb"] = rss_mb()
        for i in range(1000, 30_000):
            long.batch(i)
        figures["rss_after_30k_batches_mb"] = rss_mb()
    figures["load_average_1min"] = round(os.getloadavg()[0], 1)
    print(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
