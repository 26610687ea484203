"""How far off the training eta is: lib/train/eta.py against the old estimate (time since the log
started over steps done, times steps left), both read at the same steps of one real run.

The run is the default pretrain recipe (params.yaml `pretrain:`, its model, validation and
samples every 100 steps) on the packed default corpus (`dvc repro pack` first), cut to --steps
so it fits a few minutes; early stopping is off, since no estimate can foresee it. At each
logged step both estimates are divided by the time the run then really had left (until train()
returned: the last validation and samples included). 1.0 is exact.

    uv run python -m bench.bench_eta              # 300 steps, a few minutes on 2 free cores
    uv run python -m bench.bench_eta --steps 150 --threads 1
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from lib.core.params import load_section, load_seed
from lib.core.runtime import setup_torch
from lib.data.val_windows import val_windows
from lib.eval.validation import mean_loss
from lib.hf.import_ import init_model
from lib.infer.samples import continuations
from lib.data.shards import open_split
from lib.tokenizer import Tokenizer
from lib.train import loop
from lib.train.log import TrainLog
from lib.train.loop import finish, train
from lib.train.pretrain import PretrainParams
from lib.data.windows import TrainWindows

READ_AT = (10, 20, 50, 100, 150, 200, 250)


class Recorder(TrainLog):
    """The loop's own log, also noting both estimates at every step."""
    rows: list[tuple[int, float, float | None, float]] = []  # step, old, new, when

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.log_started = time.perf_counter()

    def step(self, step, loss, lr, grad_norm, tok_s, mfu, seconds):
        super().step(step, loss, lr, grad_norm, tok_s, mfu, seconds)
        done, now = step + 1, time.perf_counter()
        old = (now - self.log_started) / done * (self.steps - done)
        Recorder.rows.append((done, old, self.eta.remaining(done), now))


def main() -> None:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_eta", description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: pretrain.threads); "
                    "1 on a machine other jobs load: two spinning threads there crawl")
    args = ap.parse_args()
    params = load_section("pretrain", PretrainParams)
    params = dataclasses.replace(params, steps=args.steps, early_stop_patience=0, log_every=10**9,
                                 threads=args.threads or params.threads)
    seed = load_seed()
    device = setup_torch(params.device, params.threads, seed)
    tokenizer = Tokenizer.load("models/tokenizer")
    train_shards, val_shards = (open_split(f"data/shards/{s}", tokenizer.sha256) for s in ("train", "val"))
    model = init_model(params.init, tokenizer, params.model)[0].to(device)
    windows = TrainWindows(train_shards, params.seq_len, params.batch_size, seed)
    evaluate = lambda: mean_loss(model, val_windows(val_shards, params.seq_len, params.batch_size,  # noqa: E731
                                                    params.eval_batches), device)
    sample = lambda step: continuations(model, tokenizer, params.sample_prompts, params.sample_tokens)  # noqa: E731
    loop.TrainLog = Recorder  # the loop's own log, recording
    state = Path(f"/tmp/bench_eta_{seed}.pt")
    state.unlink(missing_ok=True)  # a run from step 0, never a resumed one: the first steps are the point
    try:
        train(model, params, params.plan(), device, windows.batch, evaluate, state, "bench-eta", "bench_eta",
              sample=sample)
        ended = time.perf_counter()
    finally:
        loop.TrainLog = TrainLog
        finish(state)
    out = {"steps": args.steps, "eval_every": params.eval_every, "sample_every": params.sample_every,
           "seconds": round(ended - Recorder.rows[0][3], 1)}
    for done, old, new, when in Recorder.rows:
        if done in READ_AT:
            left = ended - when
            out[f"step_{done}"] = {"seconds_left": round(left, 1), "old_over_true": round(old / left, 2),
                                   "new_over_true": None if new is None else round(new / left, 2)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
