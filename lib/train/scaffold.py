"""The frame both training stages share, so stages/pretrain.py and stages/sft.py say only what
differs (the model, the batches, how to validate and sample, the run's inputs, extra figures).

    with TrainingRun("sft", model, tokenizer, params, seed) as run:
        result = run.train(plan, device, batches, evaluate, sample, inputs=[...])
        run.save(result, best, final, samples, figures, "(from 4.62)")

``TrainingRun`` wraps the model for external attention (a no-op for learned attention), keys the
resumable state by params, seed, inputs and attention, writes the model directory (best and
final), the curves, the samples and the figures (lib/core/figures.py), prints the one summary
line, including when and why the run stopped early, and on leaving closes the batch prefetcher and
deletes the resumable state -- only when the outputs are whole, so a failed save loses nothing.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

import torch

from lib.attention import load_attention_params, wrap_for_external
from lib.core.figures import write_figures
from lib.core.io import write_json
from lib.core.stage import summary
from lib.model.checkpoint import save_best_and_final
from lib.core.distributed import SINGLE, DistContext, shutdown
from lib.train.curves import write_curves
from lib.train.loop import finish, train
from lib.train.params import RunPlan, TrainParams
from lib.train.state import TrainResult, run_key, run_metrics


@dataclass(frozen=True)
class Outputs:
    """Where a training stage's outputs go, all named after the stage."""
    stage: str

    @property
    def model(self) -> Path:    # best-by-val model; the last step's in model/final
        return Path("models") / self.stage

    @property
    def state(self) -> Path:    # resumable state: git-ignored, not a DVC output
        return Path("checkpoints") / self.stage / "state.pt"

    @property
    def plots(self) -> Path:
        return Path("metrics/plots") / self.stage

    @property
    def samples(self) -> Path:  # prose stays out of metrics: a cached output
        return Path("models/samples") / f"{self.stage}.json"


def stop_reason(result: TrainResult, params: TrainParams, steps: int) -> str:
    """Why the run ended where it did, for the summary line ("" for a plain full run)."""
    parts = []
    if result.early_stopped:
        parts.append(f"stopped early at step {result.last_step} of {steps}: no new best val loss in "
                     f"{params.early_stop_patience} validations (early_stop_patience)")
    if result.skipped_steps:
        parts.append(f"{len(result.skipped_steps)} non-finite batches skipped (on_nan: skip)")
    if result.resumed_from:
        parts.append(f"resumed from step {result.resumed_from}")
    return "; ".join(parts)


class TrainingRun:
    """One training stage's run: see the module docstring."""

    def __init__(self, stage: str, model: torch.nn.Module, tokenizer, params: TrainParams, seed: int,
                 ctx: DistContext = SINGLE):
        self.started = time.perf_counter()
        self.stage, self.model, self.tokenizer, self.ctx = stage, model, tokenizer, ctx
        self.params, self.seed = params, seed
        self.out = Outputs(stage)
        self.attention = load_attention_params()
        self.attn = wrap_for_external(model, self.attention, tokenizer, output_dir=self.out.model)  # learned: no-op
        self.plan: RunPlan | None = None
        self._to_close: list = []

    def __enter__(self) -> "TrainingRun":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        for source in self._to_close:  # the prefetcher's worker processes
            source.close()
        if exc_type is None:  # on failure: no barrier another rank may never reach; torchrun tears down
            finish(self.out.state, self.ctx)  # outputs are whole: the state has served its purpose
            shutdown(self.ctx)

    def train(self, plan: RunPlan, device: torch.device, batch: Callable, evaluate: Callable[[], float],
              sample: Callable[[int], dict], inputs: Iterable[str]) -> TrainResult:
        """lib.train.loop.train, resuming saved state of this very run (same params, seed, inputs
        and attention settings) if there is one."""
        if hasattr(batch, "close"):
            self._to_close.append(batch)
        external = [f"attention={self.attention.key()}"] if self.attention.mode == "external" else []
        key = run_key(self.params, self.seed, self.tokenizer.sha256, *inputs, *external)
        self.plan = plan
        return train(self.model, self.params, plan, device, batch, evaluate, self.out.state, key, self.stage,
                     sample=sample, ctx=self.ctx)

    def save(self, result: TrainResult, best: dict, final: dict, samples, figures: dict, produced: str = "",
             throughput: bool = True) -> None:
        """The outputs, on the main process: models/<stage> (best, and final/), the curves, the
        samples, the figures (with the run's own and the attention's), and the summary line;
        ``produced`` adds the stage's own headline figures to that line."""
        if not self.ctx.is_main:
            return
        assert self.plan is not None, "save() after train()"
        save_best_and_final(self.out.model, self.model.cfg, best, final, self.tokenizer.sha256,
                            {"stage": self.stage, "best_step": result.best_step, "last_step": result.last_step,
                             "attention": self.attention.info()})
        write_curves(self.out.plots, result, throughput=throughput)
        write_json(self.out.samples, samples)
        reason = stop_reason(result, self.params, self.plan.steps)
        write_figures(self.stage, {**figures, **run_metrics(result, self.plan.steps),
                                   "stopped_by": "early_stop_patience" if result.early_stopped else "steps",
                                   **self.attn.metrics()})
        line = (f"{result.last_step} steps, best val loss {result.best_val_loss:.4f} at step {result.best_step}"
                f"{' ' + produced if produced else ''}{'; ' + reason if reason else ''}")
        where = f"{self.out.model}, samples in {self.out.samples}"
        summary(self.stage, line, where, time.perf_counter() - self.started)
