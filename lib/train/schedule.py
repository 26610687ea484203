"""The learning-rate schedule: linear warmup, then cosine, linear or constant decay."""
from __future__ import annotations

import math

from lib.train.params import TrainParams


def lr_at(step: int, params: TrainParams, steps: int) -> float:
    """Linear warmup to ``lr``, then cosine/linear decay to ``min_lr`` at step ``steps`` (or a
    constant ``lr``)."""
    if step < params.warmup_steps:
        return params.lr * (step + 1) / params.warmup_steps
    if params.schedule == "constant":
        return params.lr
    done = min(1.0, (step - params.warmup_steps) / max(1, steps - params.warmup_steps))
    if params.schedule == "linear":
        return params.min_lr + (1.0 - done) * (params.lr - params.min_lr)
    return params.min_lr + 0.5 * (1 + math.cos(math.pi * done)) * (params.lr - params.min_lr)
