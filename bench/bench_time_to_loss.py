"""Time to a given loss on real text: our recipe against a nanoGPT-style GPT-2, same budget.

Both models have the same shape (``--shape issue``: 6 layers, width 384, 6 heads, as bench_model;
``--shape small``: 4 layers, width 256, 4 heads, ~3x the steps; sequence 256, batch 8, the corpus's
8192-token vocab, fp32 on CPU) and see the same batches in the same order from a
real-text corpus (bench/real_text.py: Debian's HTML documentation, packed by our own tokenizer,
pack and shards code), drawn by the library's TrainWindows. Both train through the library's step
(lib.train.loop.Stepper, lib.train.optim's builder, lib.train.schedule) with their own settings,
and are validated by lib.eval.validation on the first ``--val-windows`` windows of the val split. Each gets the same training wall-clock budget; the LR schedules run on the
fraction of that budget spent, so both anneal by the end of it. The two runs alternate in slices
of a few seconds (the run whose clock is behind goes next), so a change of load on a shared
machine hits both alike; evaluation time is not counted. Both clocks are kept: wall seconds and
this process's CPU seconds (the fairer figure when other jobs share the cores).

Printed: validation loss (and bits per byte) against training seconds and tokens for both, the
baseline's final validation loss, the time our recipe needed to reach it, and the ratio
(baseline time / our time: the goal is >= 2).

    uv run python -m bench.bench_time_to_loss               # ~20 minutes on 2 cores
    uv run python -m bench.bench_time_to_loss --minutes 4   # a quicker, rougher look
    uv run python -m bench.bench_time_to_loss --recipe '{"muon_lr": 0.03}'
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import real_text  # noqa: E402
from bench.baseline_gpt import BaselineGPT, baseline_params  # noqa: E402
from bench.stepping import make_stepper, timed_step  # noqa: E402
from lib.model.config import ModelConfig  # noqa: E402
from lib.core.runtime import reuse_freed_memory  # noqa: E402
from lib.data.val_windows import val_windows  # noqa: E402
from lib.eval.validation import mean_loss  # noqa: E402
from lib.model.gpt import GPT  # noqa: E402
from lib.train.optim import OptimParams  # noqa: E402
from lib.train.params import TrainParams  # noqa: E402
from lib.train.schedule import lr_at  # noqa: E402
from lib.data.windows import TrainWindows  # noqa: E402

SHAPES = {"issue": dict(n_layer=6, d_model=384, n_head=6, seq_len=256, batch=8),  # bench_model's shape
          "small": dict(n_layer=4, d_model=256, n_head=4, seq_len=256, batch=8)}  # ~3x the steps per second
# Our recipe: every field is a params.yaml key (pretrain.model.* or pretrain.*).
RECIPE = dict(qk_norm=True, mlp="relu2", d_ff_mult=4, zero_init_proj=True, logit_softcap=15.0,
              tie_embeddings=False, optimizer="muon", muon_lr=0.02, muon_momentum=0.95, muon_weight_decay=0.0,
              lr=0.01, embed_lr=0.02, head_lr=0.004, weight_decay=0.0, beta1=0.9, beta2=0.95,
              warmup=0.02, schedule="linear", min_lr_ratio=0.1, grad_clip=1.0)
# nanoGPT's baby-GPT recipe at this very shape (config/train_shakespeare_char.py): lr 1e-3,
# min_lr lr/10, beta2 0.99, warmup 100 of 5000 iterations; dropout 0 (under one epoch of data).
BASELINE = dict(lr=1e-3, min_lr_ratio=0.1, beta1=0.9, beta2=0.99, weight_decay=0.1, warmup=0.02, grad_clip=1.0)


PSEUDO_STEPS = 1000  # both schedules run on budget progress, as this many steps


def recipe_params(r: dict) -> TrainParams:
    """Our recipe as the library's training params: its optimizer, and our loop's schedule
    (warmup, then cosine or linear decay to min_lr_ratio of each group's peak) over PSEUDO_STEPS."""
    optim = {k: r[k] for k in OptimParams.__dataclass_fields__ if k in r}
    return TrainParams(**optim, min_lr=r["lr"] * r["min_lr_ratio"], warmup_steps=round(r["warmup"] * PSEUDO_STEPS),
                       schedule=r["schedule"], grad_clip=r["grad_clip"])


def recipe_scale(progress: float, r: dict) -> float:
    """The recipe's rate at budget progress in [0, 1], as a factor of its peak."""
    params = recipe_params(r)
    return lr_at(int(progress * PSEUDO_STEPS), params, PSEUDO_STEPS) / params.lr


class Run:
    """One model's training through the library's step, advanced a slice at a time; its clocks
    count training only. The schedule runs on the budget's progress: the step handed to the
    Stepper is the budget's pseudo-step, while batches follow the run's own step count."""

    def __init__(self, name: str, model, params: TrainParams, windows: TrainWindows, budget_s: float):
        self.name, self.model, self.budget_s = name, model, budget_s
        self.windows = windows
        self.stepper = make_stepper(model, params, torch.device("cpu"), lambda _: windows.batch(self.step),
                                    steps=PSEUDO_STEPS, desc=name)
        self.step = self.tokens = 0
        self.wall = self.cpu = 0.0
        self.curve: list[dict] = []
        self.next_eval = 0.0

    @property
    def done(self) -> bool:
        return self.wall >= self.budget_s

    def train_slice(self, slice_s: float, evaluate) -> None:
        end = min(self.wall + slice_s, self.budget_s)
        while self.wall < end:
            if self.wall >= self.next_eval:
                self.record(evaluate)
            stats, wall, cpu = timed_step(self.stepper, int(self.wall / self.budget_s * PSEUDO_STEPS))
            self.wall, self.cpu = self.wall + wall, self.cpu + cpu
            self.step += 1
            self.tokens += stats.tokens
        if self.done:
            self.record(evaluate)

    def record(self, evaluate) -> None:
        self.curve.append({"train_s": round(self.wall, 2), "cpu_s": round(self.cpu, 2), "step": self.step,
                           "tokens": self.tokens, "val_loss": round(evaluate(self.model), 4),
                           "load_1m": round(os.getloadavg()[0], 2)})
        self.next_eval += self.eval_every_s


def make_runs(s: dict, vocab: int, windows: TrainWindows, budget_s: float, recipe: dict, base: dict) -> list[Run]:
    torch.manual_seed(0)
    cfg = ModelConfig(vocab_size=vocab, n_layer=s["n_layer"], n_head=s["n_head"], n_kv_head=s["n_head"],
                      d_model=s["d_model"], max_seq_len=s["seq_len"], dropout=0.0,
                      d_ff=int(recipe["d_ff_mult"] * s["d_model"]),
                      **{k: recipe[k] for k in ("qk_norm", "mlp", "zero_init_proj", "logit_softcap",
                                                "tie_embeddings")})
    ours = GPT(cfg)
    torch.manual_seed(0)
    baseline = BaselineGPT(vocab, s["d_model"], s["n_layer"], s["n_head"], s["seq_len"])
    return [Run("ours", ours, recipe_params(recipe), windows, budget_s),
            Run("baseline", baseline, baseline_params(steps=PSEUDO_STEPS, **base), windows, budget_s)]


def evaluator(val_shards: list, seq: int, windows: int, batch: int = 16):
    """The library's validation (lib.eval.validation): the mean loss over the first ``windows``
    windows of the val split (rounded up to whole batches), the same for both runs."""
    def evaluate(model) -> float:
        return mean_loss(model, val_windows(val_shards, seq, batch, max_batches=-(-windows // batch)), "cpu")
    return evaluate


def time_to(curve: list[dict], target: float, clock: str) -> float | None:
    """First time the val loss reaches ``target``, linearly interpolated between evaluations."""
    prev = None
    for point in curve:
        if point["val_loss"] <= target:
            if prev is None:
                return point[clock]
            f = (prev["val_loss"] - target) / (prev["val_loss"] - point["val_loss"])
            return round(prev[clock] + f * (point[clock] - prev[clock]), 2)
        prev = point
    return None


def summarise(runs: list[Run], shape: dict, bits_per_token: float, corpus: dict, args, recipe, base) -> dict:
    ours, baseline = runs
    target = baseline.curve[-1]["val_loss"]
    out = {"goal": "ours reaches the baseline's final val loss in <= 0.5x its time (speedup >= 2)",
           "shape": {**shape, "vocab": corpus["vocab_size"], "threads": args.threads, "dtype": "float32"},
           "corpus": corpus, "budget_s_per_model": runs[0].budget_s, "recipe": recipe, "baseline_recipe": base,
           "baseline_final_val_loss": target}
    for clock in ("train_s", "cpu_s"):
        t = time_to(ours.curve, target, clock)
        b = baseline.curve[-1][clock]
        out[f"ours_{clock}_to_baseline_final"] = t
        out[f"time_ratio_{clock}"] = None if t is None else round(t / b, 3)
        out[f"speedup_{clock}"] = round(b / t, 2) if t else None  # 0: reached at the first evaluation
    t_tok = time_to(ours.curve, target, "tokens")
    out["token_ratio"] = None if t_tok is None else round(t_tok / baseline.curve[-1]["tokens"], 3)
    for run in runs:
        final = run.curve[-1]
        out[run.name] = {"params": sum(p.numel() for p in run.model.parameters()), "steps": run.step,
                         "tokens": run.tokens, "tokens_per_s": round(run.tokens / run.wall, 1),
                         "final_val_loss": final["val_loss"],
                         "final_val_bpb": round(final["val_loss"] * bits_per_token, 4),
                         "best_val_loss": min(p["val_loss"] for p in run.curve), "curve": run.curve}
    out["load_average_1m_max"] = max(p["load_1m"] for r in runs for p in r.curve)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="total, both runs and evaluation")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--shape", choices=sorted(SHAPES), default="issue")
    ap.add_argument("--slice-s", type=float, default=5.0, help="training seconds per turn")
    ap.add_argument("--evals", type=int, default=24, help="evaluations per run")
    ap.add_argument("--val-windows", type=int, default=48)
    ap.add_argument("--recipe", type=json.loads, default={}, help="JSON overrides of our recipe")
    ap.add_argument("--baseline", type=json.loads, default={}, help="JSON overrides of the baseline's recipe")
    ap.add_argument("--out", type=Path, help="also write the JSON here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    reuse_freed_memory()  # as training does (lib.core.runtime.setup_torch)
    recipe, base = {**RECIPE, **args.recipe}, {**BASELINE, **args.baseline}
    corpus_dir = real_text.prepare(vocab_size=8192)
    train, val, corpus = real_text.load_shards(corpus_dir)
    bits_per_token = corpus["val_tokens"] / corpus["val_text_bytes"] / math.log(2)
    budget = args.minutes * 60 * 0.45  # per model; the rest goes to evaluation and warm-up
    shape = SHAPES[args.shape]
    # the library's training windows: the same batches in the same order for both runs
    windows = TrainWindows(train, shape["seq_len"], shape["batch"], seed=0)
    runs = make_runs(shape, corpus["vocab_size"], windows, budget, recipe, base)
    evaluate = evaluator(val, shape["seq_len"], args.val_windows)
    for run in runs:  # warm-up (allocator, kernels): forward and backward without a step, untimed
        run.eval_every_s = budget / args.evals
        for _ in range(2):
            run.model(*windows.batch(0))[1].backward()
        run.model.zero_grad(set_to_none=True)
        evaluate(run.model)
    while not all(r.done for r in runs):
        # The run whose own clock is behind goes next: both spend their budgets at the same pace in
        # real time, so a load change on the shared machine lands on both (a fixed turn order let the
        # run with faster steps finish alone, on a quieter machine).
        run = min((r for r in runs if not r.done), key=lambda r: r.wall)
        run.train_slice(args.slice_s, evaluate)
        print(" | ".join(f"{r.name}: {r.wall:6.0f}s step {r.step:5d} val {r.curve[-1]['val_loss']:.3f}"
                         for r in runs if r.curve), file=sys.stderr, flush=True)
    report = summarise(runs, shape, bits_per_token, corpus, args, recipe, base)
    text = json.dumps(report, indent=1)
    if args.out:
        args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
