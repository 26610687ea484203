"""How long a training run has left, from what it has measured so far.

Elapsed time over steps done was 20x off early in a run: the first steps pay one-off costs (the
step-0 validation and samples, allocator and kernel warm-up, torch.compile, CUDA context), and
dividing them over 10 steps makes every remaining step look that slow. So the estimate uses
(1) the median of a moving window of recent optimizer-step times, leaving out the first steps of
this process (the median, so that warm-up running a few steps past those is outvoted), and (2) for each periodic task (validation, samples), its measured duration times
the number of times it is still due, the one at the end included. Until a task has run twice,
its first run (warm-up included) stands for all, and a task not run yet (samples before
``sample_every``) counts nothing: early estimates can be high or low by that much. It cannot
foresee early stopping: it is the time to ``steps``.
"""
from __future__ import annotations

import statistics
from collections import deque

WARMUP_STEPS = 3   # steps of this process left out of the step-time estimate
WINDOW = 50        # recent steps the median step time is taken over
RECENT = 5         # recent runs of a periodic task its mean duration is taken over


def times_due(done: int, steps: int, every: int) -> int:
    """Runs of a task due every ``every`` steps, from step ``done`` up to the end (one at the end,
    as the loop does after its last step)."""
    if every <= 0:
        return 0
    first = -(-max(done, 1) // every) * every  # the first multiple of every after step 0, at or after done
    return len(range(first, steps, every)) + 1


class Eta:
    def __init__(self, steps: int, warmup: int = WARMUP_STEPS, window: int = WINDOW):
        self.steps, self.warmup = steps, warmup
        self.seen = 0  # steps this process has timed, warm-up included
        self.recent: deque[float] = deque(maxlen=window)
        self.every: dict[str, int] = {}            # periodic task -> its period
        self.first: dict[str, float] = {}          # its first run, which pays warm-up too
        self.later: dict[str, deque[float]] = {}   # its recent later runs

    def step(self, seconds: float) -> None:
        """One optimizer step took ``seconds`` (data, forward, backward, update)."""
        self.seen += 1
        if self.seen > self.warmup:
            self.recent.append(seconds)

    def task(self, name: str, seconds: float, every: int) -> None:
        """A run of a periodic task (due every ``every`` steps and at the end) took ``seconds``."""
        self.every[name] = every
        if name not in self.first:
            self.first[name] = seconds
        else:
            self.later.setdefault(name, deque(maxlen=RECENT)).append(seconds)

    def remaining(self, done: int) -> float | None:
        """Seconds left after ``done`` steps; None until a step past the warm-up has been timed."""
        if not self.recent:
            return None
        total = statistics.median(self.recent) * max(0, self.steps - done)
        for name, every in self.every.items():
            later = self.later.get(name)
            per_run = statistics.fmean(later) if later else self.first[name]
            total += per_run * times_due(done, self.steps, every)
        return total
