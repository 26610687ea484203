"""The benches' training step: the library's (lib.train.loop.Stepper over lib.train.optim's
builder and lib.train.schedule), so a bench times and trains exactly what pretrain does."""
from __future__ import annotations

import argparse
import time
from typing import Callable

import torch
import torch.nn as nn

from lib.core.distributed import SINGLE
from lib.train.loop import Stepper, StepStats, prepare
from lib.train.optim import build_optimizer
from lib.train.params import RunPlan, TrainParams


def make_stepper(model: nn.Module, params: TrainParams, device: torch.device, batch: Callable,
                 steps: int = 1, desc: str = "bench") -> Stepper:
    """One optimizer step a call, ``stepper(step)``: the schedule's rate at ``step`` of ``steps``,
    batch ``batch(step)``, clipping and the NaN policy as ``params`` say; compiled if
    ``params.compile``."""
    optimizer = build_optimizer(model, params, device)
    module = prepare(model, params, SINGLE, device)
    return Stepper(model, module, optimizer, params, RunPlan(steps=steps), batch, device, SINGLE, desc)


def timed_step(stepper: Stepper, step: int) -> tuple[StepStats, float, float]:
    """(stats, wall seconds, this process's CPU seconds) of one step, the device synchronised."""
    t0, c0 = time.perf_counter(), time.process_time()
    stats = stepper(step)
    if stepper.device.type == "cuda":
        torch.cuda.synchronize()
    return stats, time.perf_counter() - t0, time.process_time() - c0


def add_timing_args(ap: argparse.ArgumentParser) -> None:
    """Threads, warm-up steps and timed steps: the options of the per-step benches."""
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
