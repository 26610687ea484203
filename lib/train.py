"""The training loop shared by pretrain and SFT: AdamW, warmup + cosine decay, clipping,
periodic validation, best-by-val weights, and exact resume from an atomically saved state.

Batches are requested by step index (``batch(step)``), so the data position is the step itself
and a resumed run sees exactly the batches an uninterrupted run would have seen.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from tqdm import tqdm

from lib.checkpoint import load_state, save_state
from lib.errors import UserError
from lib.model import GPT
from lib.runtime import autocast

Batch = tuple[torch.Tensor, ...]  # (inputs, targets) or (inputs, targets, loss_mask)


@dataclass
class LoopConfig:
    steps: int
    lr: float
    min_lr: float
    warmup_steps: int
    weight_decay: float
    beta1: float
    beta2: float
    grad_clip: float
    eval_every: int
    checkpoint_every: int


@dataclass
class TrainResult:
    best_model: dict[str, torch.Tensor]
    best_val_loss: float
    best_step: int
    final_val_loss: float
    final_train_loss: float
    train_curve: list[list[float]] = field(default_factory=list)  # step, tokens, loss, lr, grad_norm
    val_curve: list[list[float]] = field(default_factory=list)    # step, tokens, val_loss
    tokens: int = 0
    seconds: float = 0.0
    tokens_per_s: float = 0.0
    resumed_from: int = 0


def lr_at(step: int, cfg: LoopConfig) -> float:
    """Linear warmup to ``lr``, then cosine decay to ``min_lr`` at the last step."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return cfg.min_lr + 0.5 * (1 + math.cos(math.pi * min(1.0, progress))) * (cfg.lr - cfg.min_lr)


def make_optimizer(model: GPT, cfg: LoopConfig, device: torch.device) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (not on norms' gains or biases)."""
    params = [p for p in model.parameters() if p.requires_grad]
    decay = [p for p in params if p.dim() >= 2]
    no_decay = [p for p in params if p.dim() < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2),
                             fused=device.type == "cuda")


def train(model: GPT, cfg: LoopConfig, device: torch.device, batch: Callable[[int], Batch],
          evaluate: Callable[[], float], state_path: Path, run_key: str, desc: str) -> TrainResult:
    """Train ``model`` in place for ``cfg.steps`` steps, resuming from ``state_path`` when it holds
    a state saved by a run with the same ``run_key`` (a hash of params and inputs)."""
    optimizer = make_optimizer(model, cfg, device)
    result = TrainResult(best_model={}, best_val_loss=math.inf, best_step=-1, final_val_loss=math.nan,
                         final_train_loss=math.nan)
    start = _resume(state_path, run_key, model, optimizer, result)
    started = time.perf_counter()
    tokens_this_run = 0
    bar = tqdm(range(start, cfg.steps), desc=desc, initial=start, total=cfg.steps, leave=False,
               disable=None, mininterval=1.0)  # no bar when output is not a terminal (logs, CI)
    for step in bar:
        if step % cfg.eval_every == 0:
            _validate(model, evaluate, step, result)
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        tensors = [t.to(device, non_blocking=True) for t in batch(step)]
        with autocast(device):
            _, loss = model(tensors[0], tensors[1], loss_mask=tensors[2] if len(tensors) > 2 else None)
        if not torch.isfinite(loss):
            raise UserError(f"{desc}: loss became {loss.item()} at step {step}; lower the learning rate "
                            f"or raise warmup_steps (no checkpoint was written from this state)")
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        n_tokens = tensors[0].numel()
        result.tokens += n_tokens
        tokens_this_run += n_tokens
        result.train_curve.append([step, result.tokens, float(loss.item()), lr, float(grad_norm)])
        bar.set_postfix(loss=f"{loss.item():.3f}")
        if (step + 1) % cfg.checkpoint_every == 0 and step + 1 < cfg.steps:
            _save(state_path, run_key, step + 1, model, optimizer, result)
    _validate(model, evaluate, cfg.steps, result)
    result.final_train_loss = result.train_curve[-1][2] if result.train_curve else math.nan
    result.final_val_loss = result.val_curve[-1][2]
    result.seconds = time.perf_counter() - started
    result.tokens_per_s = tokens_this_run / max(result.seconds, 1e-9)
    state_path.unlink(missing_ok=True)  # the finished run's outputs supersede its state
    return result


def _validate(model: GPT, evaluate: Callable[[], float], step: int, result: TrainResult) -> None:
    val = evaluate()
    result.val_curve.append([step, result.tokens, val])
    if val < result.best_val_loss:
        result.best_val_loss, result.best_step = val, step
        result.best_model = {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def _save(path: Path, run_key: str, step: int, model, optimizer, result: TrainResult) -> None:
    state = {
        "run_key": run_key, "step": step,
        "model": model.state_dict(), "optimizer": optimizer.state_dict(),
        "rng_cpu": torch.get_rng_state(),
        "rng_cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "best_model": result.best_model, "best_val_loss": result.best_val_loss, "best_step": result.best_step,
        "train_curve": result.train_curve, "val_curve": result.val_curve, "tokens": result.tokens,
    }
    save_state(path, state)


def _resume(path: Path, run_key: str, model, optimizer, result: TrainResult) -> int:
    state = load_state(path)
    if state is None or state.get("run_key") != run_key:
        return 0  # no state, or one from other params/inputs: never resume a stale run
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng_cpu"])
    if state["rng_cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["rng_cuda"])
    result.best_model = copy.copy(state["best_model"])
    result.best_val_loss, result.best_step = state["best_val_loss"], state["best_step"]
    result.train_curve, result.val_curve = state["train_curve"], state["val_curve"]
    result.tokens = state["tokens"]
    result.resumed_from = state["step"]
    return state["step"]


@torch.no_grad()
def mean_loss(model: GPT, batches, device: torch.device) -> float:
    """Token-weighted mean cross-entropy over an iterable of batches, in eval mode."""
    model.eval()
    total, count = 0.0, 0
    for tensors in batches:
        tensors = [t.to(device) for t in tensors]
        with autocast(device):
            _, loss = model(tensors[0], tensors[1], loss_mask=tensors[2] if len(tensors) > 2 else None)
        n = int((tensors[2] != 0).sum()) if len(tensors) > 2 else tensors[1].numel()
        total += float(loss) * n
        count += n
    if count == 0:
        raise UserError("validation set is empty: no complete window fits; lower seq_len or add val documents")
    return total / count
