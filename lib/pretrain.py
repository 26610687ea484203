"""Pretraining params and the run key that decides whether saved training state may resume."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

from lib.model import ModelConfig
from lib.params import check
from lib.train import LoopConfig


@dataclass
class PretrainParams:
    model: ModelConfig = field(default_factory=ModelConfig)
    seq_len: int = 128
    batch_size: int = 16
    steps: int = 600
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 50
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_every: int = 100
    eval_batches: int = 8
    checkpoint_every: int = 100
    device: str = "cpu"
    threads: int = 2

    def __post_init__(self):
        check(1 <= self.seq_len <= self.model.max_seq_len, "seq_len",
              f"must be between 1 and model.max_seq_len ({self.model.max_seq_len})")
        check(self.steps >= 1, "steps", "must be >= 1")
        check(self.batch_size >= 1, "batch_size", "must be >= 1")
        check(0 < self.min_lr <= self.lr, "min_lr", "must be > 0 and <= lr")
        check(self.eval_every >= 1 and self.checkpoint_every >= 1, "eval_every", "intervals must be >= 1")
        check(self.device in ("cpu", "cuda", "auto"), "device", "must be cpu, cuda or auto")

    def loop(self) -> LoopConfig:
        return LoopConfig(steps=self.steps, lr=self.lr, min_lr=self.min_lr, warmup_steps=self.warmup_steps,
                          weight_decay=self.weight_decay, beta1=self.beta1, beta2=self.beta2,
                          grad_clip=self.grad_clip, eval_every=self.eval_every,
                          checkpoint_every=self.checkpoint_every)


def run_key(params, seed: int, *input_hashes: str) -> str:
    """Identifies a training run by its params, seed and inputs; state from another key is stale."""
    blob = json.dumps({"params": asdict(params), "seed": seed, "inputs": list(input_hashes)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()
