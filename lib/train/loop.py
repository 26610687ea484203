"""The training loop shared by pretrain and SFT: AdamW, warmup then cosine/linear/constant decay,
gradient accumulation, clipping, periodic validation with best-by-val weights and optional early
stopping, NaN handling, text samples, throughput/MFU logging, DDP/FSDP, and exact resume from an
atomically saved state.

Batches are requested by index (``batch(step * accum_steps + micro)``), so the data position is
the step itself and a resumed run sees exactly the batches an uninterrupted run would have seen.
"""
from __future__ import annotations

import copy
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from lib.train import distributed as D
from lib.model.checkpoint import load_state, save_state
from lib.train.distributed import SINGLE, DistContext
from lib.core.errors import UserError
from lib.model.gpt import GPT
from lib.core.params import check
from lib.core.runtime import autocast, mfu
from lib.core.progress import progress

Batch = tuple[torch.Tensor, ...]  # (inputs, targets) or (inputs, targets, loss_mask)

SCHEDULES = ("cosine", "linear", "constant")
MAX_CONSECUTIVE_SKIPS = 8  # on_nan: skip gives up after this many bad batches in a row: it is divergence


@dataclass
class LoopConfig:
    steps: int
    lr: float
    min_lr: float
    warmup_steps: int
    weight_decay: float
    beta1: float
    beta2: float
    grad_clip: float                  # <= 0: no clipping (the norm is still logged)
    eval_every: int
    checkpoint_every: int
    schedule: str = "cosine"          # decay after warmup: cosine | linear | constant
    accum_steps: int = 1              # micro-batches per optimizer step
    early_stop_patience: int = 0      # stop after this many validations without a new best; 0: never
    on_nan: str = "stop"              # non-finite loss or gradient: stop | skip (the batch)
    compile: bool = False             # torch.compile the training forward/backward
    sample_every: int = 0             # call ``sample`` every N steps (and at the end); 0: never
    flops_per_token: float = 0.0      # for MFU; 0: not reported
    peak_flops: float = 0.0           # one device's peak FLOP/s; 0: MFU not reported

    def __post_init__(self):
        check(self.schedule in SCHEDULES, "schedule", f"must be one of {', '.join(SCHEDULES)}")
        check(self.on_nan in ("stop", "skip"), "on_nan", "must be stop or skip")
        check(self.accum_steps >= 1, "accum_steps", "must be >= 1")
        check(self.early_stop_patience >= 0 and self.sample_every >= 0, "early_stop_patience",
              "early_stop_patience and sample_every must be >= 0")


@dataclass
class TrainResult:
    best_model: dict[str, torch.Tensor]
    best_val_loss: float
    best_step: int
    final_val_loss: float
    final_train_loss: float
    train_curve: list[list[float]] = field(default_factory=list)  # step, tokens, loss, lr, grad_norm
    val_curve: list[list[float]] = field(default_factory=list)    # step, tokens, val_loss
    perf_curve: list[list[float]] = field(default_factory=list)   # step, tokens_per_s, mfu (nan: n/a)
    samples: list[dict] = field(default_factory=list)             # {"step": s, "samples": ...}
    skipped_steps: list[int] = field(default_factory=list)        # non-finite batches skipped
    tokens: int = 0
    seconds: float = 0.0
    tokens_per_s: float = 0.0
    mfu: float | None = None
    resumed_from: int = 0
    last_step: int = 0                                            # steps actually run (early stop)
    early_stopped: bool = False
    evals_since_best: int = 0


def lr_at(step: int, cfg: LoopConfig) -> float:
    """Linear warmup to ``lr``, then cosine/linear decay to ``min_lr`` at the last step (or a
    constant ``lr``)."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.schedule == "constant":
        return cfg.lr
    progress = min(1.0, (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps))
    if cfg.schedule == "linear":
        return cfg.min_lr + (1.0 - progress) * (cfg.lr - cfg.min_lr)
    return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (cfg.lr - cfg.min_lr)


def make_optimizer(model: GPT, cfg: LoopConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on norms' gains or biases); the fused
    single-kernel implementation on CUDA."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                             fused=device.type == "cuda")


def prepare(model: GPT, cfg: LoopConfig, ctx: DistContext, device: torch.device) -> torch.nn.Module:
    """The module the loop trains through: compiled if asked, wrapped for DDP or sharded for FSDP
    (compile inside DDP so DDP's bucketing sees the graph; FSDP shards first, then compile)."""
    if ctx.fsdp:
        module = D.wrap(model, ctx, device)
        return torch.compile(module) if cfg.compile else module
    module = torch.compile(model) if cfg.compile else model
    return D.wrap(module, ctx, device)


def train(model: GPT, cfg: LoopConfig, device: torch.device, batch: Callable[[int], Batch],
          evaluate: Callable[[], float], state_path: Path, run_key: str, desc: str, *,
          sample: Callable[[int], object] | None = None, ctx: DistContext = SINGLE,
          keep_state: bool = False) -> TrainResult:
    """Train ``model`` in place for ``cfg.steps`` optimizer steps, resuming from ``state_path``
    when it holds a state saved by a run with the same ``run_key`` (a hash of params and inputs).

    ``batch(i)`` gives micro-batch i of this rank. ``evaluate()`` and ``sample(step)`` run on every
    rank (FSDP needs all ranks in each forward); rank 0's results are kept. With ``keep_state``
    the finished run's state stays on disk (marked done) until the caller has written its outputs
    and deletes it, so a kill between the last step and the outputs loses nothing.
    """
    module = prepare(model, cfg, ctx, device)
    optimizer = make_optimizer(model, cfg, device)
    result = TrainResult(best_model={}, best_val_loss=math.inf, best_step=-1, final_val_loss=math.nan,
                         final_train_loss=math.nan)
    start, done = _resume(state_path, run_key, model, optimizer, result, ctx)
    if done:
        return result
    started = time.perf_counter()
    train_seconds, tokens_this_run, bad_in_a_row = 0.0, 0, 0
    clip = cfg.grad_clip if cfg.grad_clip > 0 else math.inf
    bar = progress(range(start, cfg.steps), enabled=ctx.is_main, desc=desc, initial=start, total=cfg.steps,
                   leave=False, mininterval=1.0)
    step = start
    for step in bar:
        if step % cfg.eval_every == 0 and _validate(model, evaluate, step, result, cfg, ctx):
            result.early_stopped = True
            break
        if sample is not None and cfg.sample_every and step > 0 and step % cfg.sample_every == 0:
            _sample(sample, step, result, ctx)
        t0 = time.perf_counter()
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        loss, n_tokens = _forward_backward(module, batch, step, cfg.accum_steps, device, ctx)
        grad_norm = D.full_tensor(torch.nn.utils.clip_grad_norm_(model.parameters(), clip))
        loss_value, norm_value = float(loss), float(grad_norm)
        if not (math.isfinite(loss_value) and math.isfinite(norm_value)):
            optimizer.zero_grad(set_to_none=True)  # the weights never see this batch
            bad_in_a_row += 1
            _on_non_finite(cfg, desc, step, loss_value, norm_value, bad_in_a_row)
            result.skipped_steps.append(step)
            continue
        bad_in_a_row = 0
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        seconds = time.perf_counter() - t0
        train_seconds += seconds
        result.tokens += n_tokens
        tokens_this_run += n_tokens
        tok_s = n_tokens / max(seconds, 1e-9)
        step_mfu = mfu(cfg.flops_per_token, tok_s, cfg.peak_flops, ctx.world_size)
        result.train_curve.append([step, result.tokens, loss_value, lr, norm_value])
        result.perf_curve.append([step, tok_s, math.nan if step_mfu is None else step_mfu])
        bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.2e}", gnorm=f"{norm_value:.2f}", tok_s=f"{tok_s:.0f}",
                        **({} if step_mfu is None else {"mfu": f"{step_mfu:.1%}"}))
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            _save(state_path, run_key, step + 1, model, optimizer, result, ctx, cfg)
    else:
        step = cfg.steps
    bar.close()
    result.last_step = step
    if not result.val_curve or result.val_curve[-1][0] != step:
        _validate(model, evaluate, step, result, cfg, ctx)
    if sample is not None and cfg.sample_every:
        _sample(sample, step, result, ctx)
    result.final_train_loss = result.train_curve[-1][2] if result.train_curve else math.nan
    result.final_val_loss = result.val_curve[-1][2]
    result.seconds = time.perf_counter() - started
    result.tokens_per_s = tokens_this_run / max(train_seconds, 1e-9)
    result.mfu = mfu(cfg.flops_per_token, result.tokens_per_s, cfg.peak_flops, ctx.world_size)
    if keep_state:
        _save(state_path, run_key, step, model, optimizer, result, ctx, cfg, done=True)
    elif ctx.is_main:
        state_path.unlink(missing_ok=True)  # the finished run's outputs supersede its state
    return result


def _forward_backward(module, batch, step: int, accum: int, device, ctx: DistContext):
    """Accumulate gradients over ``accum`` micro-batches; return the mean loss over micro-batches
    and ranks, and the global token count."""
    total = torch.zeros((), device=device)
    n_tokens = 0
    for micro in range(accum):
        tensors = [t.to(device, non_blocking=True) for t in batch(step * accum + micro)]
        with D.grad_sync(module, ctx, sync=micro == accum - 1):
            with autocast(device):
                _, loss = module(tensors[0], tensors[1], loss_mask=tensors[2] if len(tensors) > 2 else None)
            (loss / accum).backward()
        total += loss.detach().float()
        n_tokens += tensors[0].numel() * ctx.world_size
    return D.mean_across(total / accum, ctx), n_tokens


def _on_non_finite(cfg: LoopConfig, desc: str, step: int, loss: float, grad_norm: float, in_a_row: int) -> None:
    what = f"{desc}: loss {loss}, gradient norm {grad_norm} at step {step}"
    if cfg.on_nan == "stop":
        raise UserError(f"{what}; lower the learning rate or raise warmup_steps, or set on_nan: skip to "
                        f"skip such batches (no checkpoint was written from this state)")
    if in_a_row > MAX_CONSECUTIVE_SKIPS:
        raise UserError(f"{what}: {in_a_row} non-finite batches in a row, the run has diverged; lower the "
                        f"learning rate or raise warmup_steps (no checkpoint was written from this state)")
    tqdm.write(f"{what}: batch skipped (on_nan: skip)")


def _validate(model: GPT, evaluate, step: int, result: TrainResult, cfg: LoopConfig, ctx: DistContext) -> bool:
    """Record the val loss; keep the best weights. True when early stopping says stop."""
    val = D.from_main(float(evaluate()), ctx)
    result.val_curve.append([step, result.tokens, val])
    if val < result.best_val_loss:
        result.best_val_loss, result.best_step, result.evals_since_best = val, step, 0
        result.best_model = D.model_state(model, ctx)
        return False
    result.evals_since_best += 1
    return 0 < cfg.early_stop_patience <= result.evals_since_best


def _sample(sample, step: int, result: TrainResult, ctx: DistContext) -> None:
    out = sample(step)
    if ctx.is_main:
        result.samples.append({"step": step, "samples": out})
        for line in (out.items() if isinstance(out, dict) else [(None, out)]):
            tqdm.write(f"[step {step}] {line[0]!r} -> {line[1]!r}" if line[0] is not None else f"[step {step}] {line[1]!r}")


def _rng_state() -> dict:
    return {"cpu": torch.get_rng_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    random.setstate(state["python"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


def _save(path: Path, run_key: str, step: int, model, optimizer, result: TrainResult, ctx: DistContext,
          cfg: LoopConfig, done: bool = False) -> None:
    """The whole state of the run after ``step`` steps. The LR schedule and the data position are
    functions of the step (recorded for readers: next LR, next micro-batch index)."""
    weights = D.model_state(model, ctx)          # collective under FSDP: every rank calls
    optim = D.optimizer_state(model, optimizer, ctx)
    rngs = D.gather(_rng_state(), ctx)           # each rank's dropout stream resumes where it was
    if not ctx.is_main:
        return
    for name, tensor in weights.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise RuntimeError(f"refusing to save training state with non-finite values in {name} at step {step}")
    save_state(path, {
        "run_key": run_key, "step": step, "done": done, "world_size": ctx.world_size,
        "next_lr": lr_at(step, cfg), "data_index": step * cfg.accum_steps,
        "model": weights, "optimizer": optim, "rng": rngs,
        "best_model": result.best_model, "best_val_loss": result.best_val_loss, "best_step": result.best_step,
        "evals_since_best": result.evals_since_best, "early_stopped": result.early_stopped,
        "train_curve": result.train_curve, "val_curve": result.val_curve, "perf_curve": result.perf_curve,
        "samples": result.samples, "skipped_steps": result.skipped_steps, "tokens": result.tokens,
    })


def _resume(path: Path, run_key: str, model, optimizer, result: TrainResult, ctx: DistContext) -> tuple[int, bool]:
    try:
        state = load_state(path)
    except Exception as err:  # unreadable (an older format, a damaged disk): start over, loudly
        if ctx.is_main:
            tqdm.write(f"ignoring unreadable training state {path}: {err}")
        return 0, False
    if state is None or state.get("run_key") != run_key or state.get("world_size", 1) != ctx.world_size:
        return 0, False  # no state, or one from other params/inputs: never resume a stale run
    D.load_model_state(model, state["model"], ctx)
    D.load_optimizer_state(model, optimizer, state["optimizer"], ctx)
    _set_rng_state(state["rng"][ctx.rank])
    result.best_model = copy.copy(state["best_model"])
    result.best_val_loss, result.best_step = state["best_val_loss"], state["best_step"]
    result.evals_since_best, result.early_stopped = state["evals_since_best"], state["early_stopped"]
    result.train_curve, result.val_curve = state["train_curve"], state["val_curve"]
    result.perf_curve, result.samples = state["perf_curve"], state["samples"]
    result.skipped_steps, result.tokens = state["skipped_steps"], state["tokens"]
    result.resumed_from = result.last_step = state["step"]
    if state["done"]:
        result.final_train_loss = result.train_curve[-1][2] if result.train_curve else math.nan
        result.final_val_loss = result.val_curve[-1][2]
    return state["step"], bool(state["done"])


@torch.no_grad()
def mean_loss(model: GPT, batches, device: torch.device, ctx: DistContext = SINGLE) -> float:
    """Token-weighted mean cross-entropy over an iterable of batches, in eval mode. Under
    torchrun each rank passes its share of the batches and gets the mean over all of them."""
    model.eval()
    total, count = 0.0, 0
    for tensors in batches:
        tensors = [t.to(device) for t in tensors]
        with autocast(device):
            _, loss = model(tensors[0], tensors[1], loss_mask=tensors[2] if len(tensors) > 2 else None)
        n = int((tensors[2] != 0).sum()) if len(tensors) > 2 else tensors[1].numel()
        total += float(loss) * n
        count += n
    if ctx.enabled:
        sums = torch.tensor([total, float(count)], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(sums)
        total, count = float(sums[0]), int(sums[1])
    if count == 0:
        raise UserError("validation set is empty: no complete window fits; lower seq_len or add val documents")
    return total / count
