"""The training ETA (lib/train/eta.py) on simulated runs with a realistic shape: slow first steps
(warm-up, compile, a GPU's context and autotuning), a slow step-0 validation, periodic validation
and samples."""
import math

import pytest

from lib.train.eta import Eta, times_due

STEPS, EVAL_EVERY, SAMPLE_EVERY = 1000, 100, 100
STEP_S, VAL_S, SAMPLE_S = 0.09, 1.5, 0.6


def cpu_step(i: int) -> float:
    return [6.0, 3.0, 1.0][i] if i < 3 else STEP_S * (1 + 0.1 * math.sin(i))  # warm-up, then jitter


def gpu_step(i: int) -> float:
    """Context creation and compile in step 0, autotuning for a few more, then fast steps: the
    shape of the run that printed "eta 34m" at step 10 and ended in 93 s."""
    return [15.0, 1.0, 1.0, 1.0, 1.0][i] if i < 5 else 0.05 * (1 + 0.1 * math.sin(i))


def simulate(upto: int, step_seconds=cpu_step, val_s: float = VAL_S, sample_s: float = SAMPLE_S):
    """(the estimator after ``upto`` steps, the true remaining seconds, elapsed seconds), as the loop
    runs it: validation before step s when s % eval_every == 0, samples when s > 0 too, both at the end."""
    eta, elapsed, remaining = Eta(STEPS), 0.0, 0.0
    for s in range(STEPS + 1):
        cost = 0.0
        if s == STEPS or s % EVAL_EVERY == 0:
            val = val_s * (4 if s == 0 else 1)
            cost += val
            if s < upto:
                eta.task("validation", val, EVAL_EVERY)
        if s == STEPS or (s > 0 and s % SAMPLE_EVERY == 0):
            cost += sample_s
            if s < upto:
                eta.task("samples", sample_s, SAMPLE_EVERY)
        if s < STEPS:
            cost += step_seconds(s)
            if s < upto:
                eta.step(step_seconds(s))
        if s < upto:
            elapsed += cost
        else:
            remaining += cost
    return eta, remaining, elapsed


@pytest.mark.parametrize("done,tolerance", [(10, 0.5), (50, 0.5), (250, 0.05), (990, 0.05)])
def test_eta_is_close_where_elapsed_over_steps_is_far_off(done, tolerance):
    """Before a second validation, the slow first one (4x here) stands for all: within 50%;
    after that, within 5%."""
    eta, truth, elapsed = simulate(done)
    estimate = eta.remaining(done)
    assert estimate == pytest.approx(truth, rel=tolerance), (estimate, truth)
    if done == 10:  # the old estimate: elapsed / done * steps left, more than 10x too long here
        assert elapsed / done * (STEPS - done) > 10 * truth


def test_eta_outvotes_warmup_that_runs_past_the_steps_it_leaves_out():
    eta, truth, elapsed = simulate(10, gpu_step, val_s=0.15, sample_s=0.3)  # 8 val batches; generation
    assert eta.remaining(10) == pytest.approx(truth, rel=0.1)
    assert elapsed / 10 * (STEPS - 10) > 20 * truth  # the old estimate: 20x and more


def test_no_estimate_until_a_step_after_the_warmup():
    eta = Eta(100, warmup=3)
    for _ in range(3):
        eta.step(5.0)
    assert eta.remaining(3) is None
    eta.step(0.1)
    assert eta.remaining(4) == pytest.approx(0.1 * 96)


def test_a_periodic_task_counts_its_later_runs_not_its_first():
    eta = Eta(10, warmup=0)
    eta.step(1.0)
    eta.task("validation", 100.0, 5)  # step 0: warm-up inside
    assert eta.remaining(1) == pytest.approx(9 * 1.0 + 100.0 * 2)  # until later runs: the first one's
    eta.task("validation", 2.0, 5)
    assert eta.remaining(6) == pytest.approx(4 * 1.0 + 2.0 * 1)  # only the one at the end is left


@pytest.mark.parametrize("done,steps,every,expected", [
    (0, 12, 6, 2),       # step 6 and the end (step 0's is before any step: done)
    (10, 1000, 100, 10),  # 100..900 and the end
    (100, 1000, 100, 10),  # 100 itself is still due: validation runs before step 100
    (995, 1000, 100, 1),
    (5, 10, 0, 0),       # never
])
def test_times_due(done, steps, every, expected):
    assert times_due(done, steps, every) == expected
