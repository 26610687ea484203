"""Training runs for the recipe benches (bench_lr_sweep, bench_time_to_loss): the shipped recipe
at a shape (bench/shipped.py: params.yaml through the stage's builders) or the nanoGPT-style
baseline (bench/baseline_gpt.py), each stepped by the library's Stepper (the schedule, clipping and
optimizer pretrain uses) on the library's training windows, and validated on val windows spread
evenly over the split (lib.data.val_windows) at chosen steps. Runs that train together alternate
step by step, so a load change on the shared machine lands on each alike and their per-step wall
times are comparable."""
from __future__ import annotations

import argparse
import math
import os
import statistics
from dataclasses import dataclass, field
from typing import Callable

import torch

from bench.baseline_gpt import NANOGPT, BaselineGPT, baseline_params
from bench.shipped import SHAPES, Shape, build_model, shipped_params
from bench.stepping import make_stepper, timed_step
from lib.core.errors import UserError
from lib.core.runtime import reuse_freed_memory
from lib.data.val_windows import val_windows
from lib.data.windows import TrainWindows
from lib.eval.validation import mean_loss
from lib.train.loop import Stepper

CPU = torch.device("cpu")


@dataclass
class Trainee:
    name: str
    model: torch.nn.Module
    stepper: Stepper
    settings: dict
    curve: list[dict] = field(default_factory=list)
    step_walls: list[float] = field(default_factory=list)
    step_cpus: list[float] = field(default_factory=list)
    tokens: int = 0
    diverged: str = ""  # the library's non-finite stop, if it came: the run ends there

    def advance(self, step: int) -> None:
        if self.diverged:
            return
        try:
            stats, wall, cpu = timed_step(self.stepper, step)
        except UserError as err:  # on_nan: stop (as shipped) -- a rate too high for this shape
            self.diverged = str(err)
            return
        self.step_walls.append(wall)
        self.step_cpus.append(cpu)
        self.tokens += stats.tokens

    def record(self, step: int, evaluate: Callable) -> None:
        if self.diverged:
            return
        self.curve.append({"step": step, "tokens": self.tokens, "train_s": round(sum(self.step_walls), 2),
                           "cpu_s": round(sum(self.step_cpus), 2), "val_loss": round(evaluate(self.model), 4),
                           "load_1m": round(os.getloadavg()[0], 2)})

    def summary(self) -> dict:
        walls = self.step_walls[1:] or self.step_walls  # the first step pays one-off allocation
        return {**self.settings, "params": sum(p.numel() for p in self.model.parameters()),
                "steps": len(self.step_walls), "tokens": self.tokens,
                "median_step_s": round(statistics.median(walls), 4),
                "median_step_cpu_s": round(statistics.median(self.step_cpus[1:] or self.step_cpus), 4),
                "final_val_loss": None if self.diverged else self.curve[-1]["val_loss"],
                "diverged": self.diverged or None, "curve": self.curve}


def ours(shape: Shape, steps: int, vocab: int, windows: TrainWindows, seed: int, lr_mult: float = 1.0,
         muon_mult: float | None = None) -> Trainee:
    """The shipped recipe at ``shape`` for ``steps`` steps, every rate times ``lr_mult`` (Muon's
    times ``muon_mult`` when given)."""
    params = shipped_params(shape, steps, lr_mult, muon_mult)
    torch.manual_seed(seed)  # as the stage (lib.core.runtime.setup_torch) before building
    model = build_model(params, vocab)
    stepper = make_stepper(model, params, CPU, windows.batch, steps=steps, desc="ours")
    rates = {k: getattr(params, k) for k in ("lr", "muon_lr", "embed_lr", "head_lr")}
    return Trainee(f"ours x{lr_mult:g}", model, stepper, {"recipe": "shipped params.yaml", "lr_mult": lr_mult, "muon_mult": muon_mult,
                                                           "base_rates": rates, "width_mult": model.cfg.width_mult})


def baseline(shape: Shape, steps: int, vocab: int, windows: TrainWindows, seed: int, lr: float) -> Trainee:
    """nanoGPT's GPT-2 and AdamW recipe (bench/baseline_gpt.py) at ``shape`` and peak rate ``lr``."""
    settings = {**NANOGPT, "lr": lr}
    torch.manual_seed(seed)
    model = BaselineGPT(vocab, shape.d_model, shape.n_layer, shape.n_head, shape.seq_len)
    stepper = make_stepper(model, baseline_params(steps=steps, **settings), CPU, windows.batch, steps=steps,
                           desc="baseline")
    return Trainee(f"baseline lr {lr:g}", model, stepper, {"recipe": "nanoGPT", **settings})


def evaluator(val_shards: list, shape: Shape, batches: int) -> Callable:
    """Mean val loss over ``batches`` batches of windows spread evenly over the val split."""
    def evaluate(model) -> float:
        return mean_loss(model, val_windows(val_shards, shape.seq_len, shape.batch, max_batches=batches), CPU)
    return evaluate


def eval_points(steps: int, n: int, initial: bool = True) -> list[int]:
    """``n`` evaluation steps evenly spaced up to ``steps``, and step 0 (the initial weights) if
    ``initial``."""
    return sorted({round(i * steps / n) for i in range(0 if initial else 1, n + 1)})


def train_together(trainees: list[Trainee], steps: int, evals: int, evaluate: Callable,
                   log: Callable[[str], None] = lambda _: None, initial: bool = True) -> None:
    """Every trainee ``steps`` steps, alternating step by step, all validated at the same steps."""
    points = set(eval_points(steps, evals, initial))
    for step in range(steps + 1):
        if step in points:
            for t in trainees:
                t.record(step, evaluate)
            log(" | ".join(f"{t.name}: step {step} val {t.curve[-1]['val_loss']:.3f}" for t in trainees
                           if t.curve and not t.diverged))
        if step < steps:
            for t in trainees:
                t.advance(step)


def warm_up(makers: list[Callable[[], Trainee]], steps: int = 5) -> None:
    """Build and step throwaway copies of the runs about to be timed, then drop them: the process's
    first steps pay for first-touched memory (several times a warm step), which a run that reaches
    its target in a few dozen steps would otherwise carry in its wall clock. The real runs are built
    afterwards from their own seeds on stateless batches, so their losses are unchanged."""
    spares = [make() for make in makers]
    for step in range(steps):
        for t in spares:
            t.advance(step)
    del spares


def time_to(curve: list[dict], target: float, clock: str) -> float | None:
    """First ``clock`` value at which the val loss reaches ``target``, linearly interpolated
    between evaluations; None if it never does."""
    prev = None
    for point in curve:
        if point["val_loss"] <= target:
            if prev is None:
                return point[clock]
            f = (prev["val_loss"] - target) / (prev["val_loss"] - point["val_loss"])
            return round(prev[clock] + f * (point[clock] - prev[clock]), 2)
        prev = point
    return None


def add_run_args(ap: argparse.ArgumentParser, steps_example: str) -> None:
    """The options the recipe benches share: shapes, per-shape step overrides, val batches, threads."""
    ap.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    ap.add_argument("--steps", nargs="*", default=[], help=f"SHAPE=STEPS overrides, e.g. {steps_example}")
    ap.add_argument("--val-batches", type=int, default=8, help="batches of spread val windows per validation")
    ap.add_argument("--threads", type=int, default=1, help="1: on cores shared with other jobs, 2 threads "
                    "spin-wait for each other (measured 2-3x slower a step under load)")


def setup_runs(args: argparse.Namespace, default_steps: dict[str, int]) -> dict[str, int]:
    """Torch set up as training sets it; returns the steps per shape after the overrides."""
    torch.set_num_threads(args.threads)
    reuse_freed_memory()  # as training does (lib.core.runtime.setup_torch)
    return {**default_steps, **{k: int(v) for k, v in (s.split("=") for s in args.steps)}}


def bits_per_nat(corpus: dict) -> float:
    """Bits per byte per nat of per-token loss on the corpus's val split."""
    return corpus["val_tokens"] / corpus["val_text_bytes"] / math.log(2)


def shape_entry(shape: Shape, steps: int) -> dict:
    """A shape's header in a results file: its dimensions, steps and tokens per run."""
    return {"shape": {**shape.__dict__, "n_head": shape.n_head}, "steps": steps,
            "tokens": steps * shape.seq_len * shape.batch}
