"""The training loop shared by pretrain and SFT, as a short sequence of parts that each decide for
themselves: ``Stepper`` (one optimizer step: LR, gradient accumulation, clipping, the NaN
policy), ``Validation`` (when to validate, the best weights, early stopping), ``Checkpoints``
(when to save resumable state), ``Sampling`` (text samples) and ``TrainLog`` (progress lines).
The loop state (``LoopState``) is what they share and what a checkpoint saves; ``TrainResult`` is
what the caller gets back.

Batches are requested by index (``batch(step * accum_steps + micro)``), so the data position is
the step itself and a resumed run sees exactly the batches an uninterrupted run would have seen.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from lib.core.distributed import SINGLE, DistContext
from lib.core.errors import UserError
from lib.core.runtime import autocast, mfu
from lib.data.batch import Batch
from lib.train import distributed as D
from lib.train.log import TrainLog
from lib.train.optim import build_optimizer, set_lr
from lib.train.params import RunPlan, TrainParams
from lib.train.schedule import lr_at
from lib.train.state import LoopState, StateFile, TrainResult

MAX_CONSECUTIVE_SKIPS = 8  # on_nan: skip gives up after this many bad batches in a row: it is divergence


def prepare(model: torch.nn.Module, params: TrainParams, ctx: DistContext, device: torch.device) -> torch.nn.Module:
    """The module the loop trains through: compiled if asked, wrapped for DDP or sharded for FSDP
    (compile inside DDP so DDP's bucketing sees the graph; FSDP shards first, then compile)."""
    if ctx.fsdp:
        module = D.wrap(model, ctx, device)
        return torch.compile(module) if params.compile else module
    module = torch.compile(model) if params.compile else model
    return D.wrap(module, ctx, device)


@dataclass
class StepStats:
    loss: float
    grad_norm: float
    lr: float
    tokens: int
    seconds: float


class Stepper:
    """One optimizer step over ``accum_steps`` micro-batches. A non-finite loss or gradient stops
    the run naming the step (``on_nan: stop``) or skips the batch (``skip``): returns None."""

    def __init__(self, model, module, optimizer, params: TrainParams, plan: RunPlan, batch, device, ctx, desc):
        self.model, self.module, self.optimizer = model, module, optimizer
        self.params, self.plan, self.batch, self.device, self.ctx, self.desc = params, plan, batch, device, ctx, desc
        self.clip = params.grad_clip if params.grad_clip > 0 else math.inf
        self.bad_in_a_row = 0

    def __call__(self, step: int) -> StepStats | None:
        t0 = time.perf_counter()
        lr = lr_at(step, self.params, self.plan.steps)
        set_lr(self.optimizer, lr, self.params.lr)  # every role's rate follows the one schedule
        self.model.train()
        loss, n_tokens = self._forward_backward(step)
        grad_norm = D.full_tensor(torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip))
        loss_value, norm_value = float(loss), float(grad_norm)
        if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
            self.optimizer.zero_grad(set_to_none=True)  # the weights never see this batch
            self.bad_in_a_row += 1
            self._on_non_finite(step, loss_value, norm_value)
            return None
        self.bad_in_a_row = 0
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        return StepStats(loss_value, norm_value, lr, n_tokens, time.perf_counter() - t0)

    def _forward_backward(self, step: int):
        """Accumulate gradients over the micro-batches; the mean loss over micro-batches and ranks,
        and the global token count."""
        accum, ctx = self.plan.accum_steps, self.ctx
        total = torch.zeros((), device=self.device)
        n_tokens = 0
        for micro in range(accum):
            batch = self.batch(step * accum + micro).to(self.device, non_blocking=True)
            with D.grad_sync(self.module, ctx, sync=micro == accum - 1):
                with autocast(self.device):
                    _, loss = self.module(batch.inputs, batch.targets, loss_mask=batch.loss_mask)
                (loss / accum).backward()
            total += loss.detach().float()
            n_tokens += batch.inputs.numel() * ctx.world_size
        return D.mean_across(total / accum, ctx), n_tokens

    def _on_non_finite(self, step: int, loss: float, grad_norm: float) -> None:
        what = f"{self.desc}: loss {loss}, gradient norm {grad_norm} at step {step}"
        if self.params.on_nan == "stop":
            raise UserError(f"{what}; lower the learning rate or raise warmup_steps, or set on_nan: skip to "
                            f"skip such batches (no checkpoint was written from this state)")
        if self.bad_in_a_row > MAX_CONSECUTIVE_SKIPS:
            raise UserError(f"{what}: {self.bad_in_a_row} non-finite batches in a row, the run has diverged; "
                            f"lower the learning rate or raise warmup_steps (no checkpoint was written from this state)")


class Validation:
    """Validates every ``eval_every`` steps; keeps the best weights; says when early stopping stops."""

    def __init__(self, model, evaluate: Callable[[], float], params: TrainParams, ctx: DistContext, log: TrainLog):
        self.model, self.evaluate, self.params, self.ctx, self.log = model, evaluate, params, ctx, log

    def due(self, step: int) -> bool:
        return step % self.params.eval_every == 0

    def __call__(self, state: LoopState) -> bool:
        """Record the val loss at ``state.step``; True when early stopping says stop."""
        started = time.perf_counter()
        val = D.from_main(float(self.evaluate()), self.ctx)
        self.log.periodic("validation", time.perf_counter() - started, self.params.eval_every)
        state.val_curve.append([state.step, state.tokens, val])
        best = val < state.best_val_loss
        self.log.validated(state.step, val, best)
        if best:
            state.best_val_loss, state.best_step, state.evals_since_best = val, state.step, 0
            state.best_model = D.model_state(self.model, self.ctx)
            return False
        state.evals_since_best += 1
        return 0 < self.params.early_stop_patience <= state.evals_since_best


class Sampling:
    """Text samples every ``sample_every`` steps and at the end (none when ``sample`` is None)."""

    def __init__(self, sample: Callable[[int], dict] | None, params: TrainParams, ctx: DistContext, log: TrainLog):
        self.sample, self.every, self.ctx, self.log = sample, params.sample_every, ctx, log

    def due(self, step: int) -> bool:
        return self.sample is not None and self.every > 0 and step > 0 and step % self.every == 0

    def __call__(self, state: LoopState) -> None:
        if self.sample is None or not self.every:
            return
        started = time.perf_counter()
        out = self.sample(state.step)
        self.log.periodic("samples", time.perf_counter() - started, self.every)
        if self.ctx.is_main:
            state.samples.append({"step": state.step, "samples": out})
            for prompt, text in out.items():
                self.log.write(f"[step {state.step}] {prompt!r} -> {text!r}")


class Checkpoints:
    """Resumable state every ``checkpoint_every`` steps, through ``StateFile``."""

    def __init__(self, file: StateFile, model, optimizer, params: TrainParams, plan: RunPlan, ctx: DistContext):
        self.file, self.model, self.optimizer, self.ctx = file, model, optimizer, ctx
        self.every, self.steps = params.checkpoint_every, plan.steps

    def after(self, state: LoopState) -> None:
        if state.step % self.every == 0 and state.step < self.steps:
            self.save(state)

    def save(self, state: LoopState, done: bool = False) -> None:
        self.file.save(state, self.model, self.optimizer, self.ctx, done)


def train(model: torch.nn.Module, params: TrainParams, plan: RunPlan, device: torch.device,
          batch: Callable[[int], Batch], evaluate: Callable[[], float], state_path: Path, run_key: str,
          desc: str, *, sample: Callable[[int], dict] | None = None, ctx: DistContext = SINGLE) -> TrainResult:
    """Train ``model`` in place for ``plan.steps`` optimizer steps, resuming from ``state_path``
    when it holds a state saved by a run with the same ``run_key`` (a hash of params and inputs).

    ``batch(i)`` gives micro-batch i of this rank. ``evaluate()`` and ``sample(step)`` run on every
    rank (FSDP needs all ranks in each forward); rank 0's results are kept. The finished run's
    state stays on disk, marked done, until the caller has written its outputs and calls
    ``finish(state_path)``: a kill between the last step and the outputs loses nothing.
    """
    module = prepare(model, params, ctx, device)
    optimizer = build_optimizer(model, params, device, ctx.fsdp)
    file = StateFile(state_path, run_key)
    resumed = file.resume(model, optimizer, ctx)
    state, done = resumed if resumed else (LoopState(), False)
    if done:
        return TrainResult.of(state, resumed_from=state.step)
    resumed_from, started = state.step, time.perf_counter()
    log = TrainLog(desc, state.step, plan.steps, params.log_every, enabled=ctx.is_main)
    step_once = Stepper(model, module, optimizer, params, plan, batch, device, ctx, desc)
    validate, samples = Validation(model, evaluate, params, ctx, log), Sampling(sample, params, ctx, log)
    checkpoints = Checkpoints(file, model, optimizer, params, plan, ctx)
    train_seconds, tokens_this_run = 0.0, 0
    while state.step < plan.steps:
        if validate.due(state.step) and validate(state):
            state.early_stopped = True
            break
        if samples.due(state.step):
            samples(state)
        stats = step_once(state.step)
        if stats is None:
            state.skipped_steps.append(state.step)
            log.skipped(state.step)
        else:
            train_seconds, tokens_this_run = train_seconds + stats.seconds, tokens_this_run + stats.tokens
            _record(state, stats, plan, ctx, log)
        state.step += 1
        checkpoints.after(state)
    log.close()
    if not state.val_curve or state.val_curve[-1][0] != state.step:
        validate(state)
    samples(state)
    tokens_per_s = tokens_this_run / max(train_seconds, 1e-9)
    checkpoints.save(state, done=True)
    return TrainResult.of(state, resumed_from=resumed_from, seconds=time.perf_counter() - started,
                          tokens_per_s=tokens_per_s,
                          mfu=mfu(plan.flops_per_token, tokens_per_s, plan.peak_flops, ctx.world_size))


def _record(state: LoopState, stats: StepStats, plan: RunPlan, ctx: DistContext, log: TrainLog) -> None:
    """Curves and progress after a completed optimizer step."""
    state.tokens += stats.tokens
    tok_s = stats.tokens / max(stats.seconds, 1e-9)
    step_mfu = mfu(plan.flops_per_token, tok_s, plan.peak_flops, ctx.world_size)
    state.train_curve.append([state.step, state.tokens, stats.loss, stats.lr, stats.grad_norm])
    state.perf_curve.append([state.step, tok_s, math.nan if step_mfu is None else step_mfu])
    log.step(state.step, stats.loss, stats.lr, stats.grad_norm, tok_s, step_mfu, stats.seconds)


def finish(state_path: Path, ctx: DistContext = SINGLE) -> None:
    """The caller's outputs are whole: the run's saved state has served its purpose."""
    if ctx.is_main:
        state_path.unlink(missing_ok=True)
