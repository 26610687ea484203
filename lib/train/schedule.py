"""The learning-rate schedule: linear warmup to ``lr``, then a decay from the ``SCHEDULES`` table.

A decay is a function of ``done`` (the share of the post-warmup steps taken, 0 to 1), the peak
``lr`` and the floor ``min_lr``. A new schedule is one function and one entry in ``SCHEDULES``:
``schedule:`` in params.yaml is checked against the table's keys when the params load.
"""
from __future__ import annotations

import math
from typing import Callable, Protocol

Decay = Callable[[float, float, float], float]  # (done, lr, min_lr) -> the rate


class ScheduleParams(Protocol):
    """What the schedule reads of TrainParams (lib/train/params.py, which checks ``schedule``
    against this module's table)."""
    lr: float
    min_lr: float
    warmup_steps: int
    schedule: str


def cosine(done: float, lr: float, min_lr: float) -> float:
    return min_lr + 0.5 * (1 + math.cos(math.pi * done)) * (lr - min_lr)


def linear(done: float, lr: float, min_lr: float) -> float:
    return min_lr + (1.0 - done) * (lr - min_lr)


def constant(done: float, lr: float, min_lr: float) -> float:
    return lr  # ``lr`` itself, not min_lr + (lr - min_lr), which may differ in the last bit


SCHEDULES: dict[str, Decay] = {"cosine": cosine, "linear": linear, "constant": constant}


def lr_at(step: int, params: ScheduleParams, steps: int) -> float:
    """Linear warmup to ``lr`` over ``warmup_steps``, then ``params.schedule``'s decay, reaching
    its end at step ``steps``."""
    if step < params.warmup_steps:
        return params.lr * (step + 1) / params.warmup_steps
    done = min(1.0, (step - params.warmup_steps) / max(1, steps - params.warmup_steps))
    return SCHEDULES[params.schedule](done, params.lr, params.min_lr)
