"""What a training run accumulates (``LoopState``), the key that says whether saved state belongs to
this run, and the resumable state file: weights, optimizer, RNG streams and the loop state,
written atomically and loaded with ``weights_only=True``.

The LR schedule and the data position are functions of the step, so the step is all a resumed
run needs to see exactly the batches and learning rates an uninterrupted run would have seen.
"""
from __future__ import annotations

import copy
import hashlib
import json
import math
import random
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import torch

from lib.model.checkpoint import load_state, save_state
from lib.core.distributed import DistContext
from lib.train import distributed as D


@dataclass
class LoopState:
    """Everything the loop has accumulated after ``step`` steps; saved and restored whole."""
    step: int = 0
    tokens: int = 0
    best_model: dict[str, torch.Tensor] = field(default_factory=dict)
    best_val_loss: float = math.inf
    best_step: int = -1
    evals_since_best: int = 0
    early_stopped: bool = False
    train_curve: list[list[float]] = field(default_factory=list)  # step, tokens, loss, lr, grad_norm
    val_curve: list[list[float]] = field(default_factory=list)    # step, tokens, val_loss
    perf_curve: list[list[float]] = field(default_factory=list)   # step, tokens_per_s, mfu (nan: n/a)
    samples: list[dict] = field(default_factory=list)             # {"step": s, "samples": {...}}
    skipped_steps: list[int] = field(default_factory=list)        # non-finite batches skipped

    def to_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict) -> "LoopState":
        state = cls(**{f.name: data[f.name] for f in fields(cls)})
        state.best_model = copy.copy(state.best_model)
        return state


@dataclass
class TrainResult(LoopState):
    """The finished run: its loop state plus what was measured about it."""
    final_val_loss: float = math.nan
    final_train_loss: float = math.nan
    last_step: int = 0               # steps actually run (fewer on early stopping)
    resumed_from: int = 0
    seconds: float = 0.0
    tokens_per_s: float = 0.0
    mfu: float | None = None

    @classmethod
    def of(cls, state: LoopState, **measured) -> "TrainResult":
        return cls(**state.to_dict(), last_step=state.step,
                   final_train_loss=state.train_curve[-1][2] if state.train_curve else math.nan,
                   final_val_loss=state.val_curve[-1][2] if state.val_curve else math.nan, **measured)


def run_metrics(result: TrainResult, steps: int) -> dict:
    """The figures every training stage reports in its metrics file."""
    return {
        "steps": steps, "last_step": result.last_step, "early_stopped": result.early_stopped,
        "skipped_steps": len(result.skipped_steps), "tokens_seen": result.tokens, "best_step": result.best_step,
        "best_val_loss": round(result.best_val_loss, 4), "final_val_loss": round(result.final_val_loss, 4),
        "final_train_loss": round(result.final_train_loss, 4), "tokens_per_s": round(result.tokens_per_s, 1),
        "mfu": None if result.mfu is None or math.isnan(result.mfu) else round(result.mfu, 4),
        "seconds": round(result.seconds, 1), "resumed_from_step": result.resumed_from,
    }


def run_key(params, seed: int, *input_hashes: str) -> str:
    """Identifies a training run by its params, seed and inputs; state from another key is stale."""
    blob = json.dumps({"params": asdict(params), "seed": seed, "inputs": list(input_hashes)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _rng_state() -> dict:
    return {"cpu": torch.get_rng_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state() if torch.cuda.is_available() else None}


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["cpu"])
    random.setstate(state["python"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


@dataclass
class StateFile:
    """The resumable state of one run at ``path``, valid only for the run with ``run_key``."""
    path: Path
    run_key: str

    def save(self, state: LoopState, model, optimizer, ctx: DistContext, done: bool = False) -> None:
        weights = D.model_state(model, ctx)          # collective under FSDP: every rank calls
        optim = D.optimizer_state(model, optimizer, ctx)
        rngs = D.gather(_rng_state(), ctx)           # each rank's dropout stream resumes where it was
        if not ctx.is_main:
            return
        for name, tensor in weights.items():
            if tensor.is_floating_point() and not torch.isfinite(tensor).all():
                raise RuntimeError(f"refusing to save training state with non-finite values in {name} "
                                   f"at step {state.step}")
        save_state(self.path, {"run_key": self.run_key, "done": done, "world_size": ctx.world_size,
                               "model": weights, "optimizer": optim, "rng": rngs, "loop": state.to_dict()})

    def resume(self, model, optimizer, ctx: DistContext) -> tuple[LoopState, bool] | None:
        """(loop state, done) of a saved run with this key, loaded into model and optimizer; None
        when there is none, or it is another run's (other params or inputs: never resume those)."""
        try:
            saved = load_state(self.path)
        except Exception as err:  # unreadable (an older format, a damaged disk): start over, loudly
            if ctx.is_main:
                print(f"ignoring unreadable training state {self.path}: {err}", flush=True)
            return None
        if (saved is None or saved.get("run_key") != self.run_key or "loop" not in saved
                or saved.get("world_size", 1) != ctx.world_size):
            return None
        D.load_model_state(model, saved["model"], ctx)
        D.load_optimizer_state(model, optimizer, saved["optimizer"], ctx)
        _set_rng_state(saved["rng"][ctx.rank])
        return LoopState.from_dict(saved["loop"]), bool(saved["done"])

    def delete(self, ctx: DistContext) -> None:
        if ctx.is_main:
            self.path.unlink(missing_ok=True)
