"""Pretraining params, the run key that decides whether saved training state may resume, and the
pieces of the pretrain stage a test wants to reach (loop config, text samples, outputs)."""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from lib.model.checkpoint import save_model
from lib.core.errors import UserError
from lib.core.io import atomic_path
from lib.model.config import ModelConfig
from lib.model.gpt import GPT
from lib.core.params import check
from lib.train.loop import LoopConfig

DEFAULT_PROMPTS = ["MPI is", "To compile a CUDA kernel,", "OpenMP"]


@dataclass
class PretrainParams:
    model: ModelConfig = field(default_factory=ModelConfig)
    seq_len: int = 128
    batch_size: int = 16             # sequences per micro-batch per process
    tokens_per_step: int = 0         # tokens per optimizer step (gradient accumulation); 0: one micro-batch
    steps: int = 600
    lr: float = 3e-3
    min_lr: float = 3e-4
    warmup_steps: int = 50
    schedule: str = "cosine"         # cosine | linear | constant (after warmup)
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.95
    grad_clip: float = 1.0
    eval_every: int = 100
    eval_batches: int = 8
    early_stop_patience: int = 0     # validations without a new best before stopping; 0: never
    checkpoint_every: int = 100
    on_nan: str = "stop"             # stop | skip
    sample_every: int = 0            # greedy samples from sample_prompts every N steps; 0: never
    sample_prompts: list[str] = field(default_factory=lambda: list(DEFAULT_PROMPTS))
    sample_tokens: int = 24
    compile: bool = False            # torch.compile (GPU: ~1.3-2x faster after a minute of compiling)
    parallel: str = "ddp"            # under torchrun: ddp (replicas) | fsdp (sharded, for big models)
    peak_tflops: float = 0.0         # one device's bf16 peak for MFU; 0: looked up from the GPU's name
    device: str = "cpu"
    threads: int = 2

    def __post_init__(self):
        check(1 <= self.seq_len <= self.model.max_seq_len, "seq_len",
              f"must be between 1 and model.max_seq_len ({self.model.max_seq_len})")
        check(self.steps >= 1, "steps", "must be >= 1")
        check(self.batch_size >= 1, "batch_size", "must be >= 1")
        check(self.tokens_per_step >= 0, "tokens_per_step", "must be >= 0")
        check(0 < self.min_lr <= self.lr, "min_lr", "must be > 0 and <= lr")
        check(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        check(self.eval_every >= 1 and self.checkpoint_every >= 1, "eval_every", "intervals must be >= 1")
        check(self.eval_batches >= 1, "eval_batches", "must be >= 1")
        check(self.early_stop_patience >= 0, "early_stop_patience", "must be >= 0")
        check(self.sample_every >= 0 and self.sample_tokens >= 1, "sample_every",
              "sample_every must be >= 0 and sample_tokens >= 1")
        check(self.on_nan in ("stop", "skip"), "on_nan", "must be stop or skip")
        check(self.schedule in ("cosine", "linear", "constant"), "schedule", "must be cosine, linear or constant")
        check(self.parallel in ("ddp", "fsdp"), "parallel", "must be ddp or fsdp")
        check(self.peak_tflops >= 0, "peak_tflops", "must be >= 0")
        check(self.device in ("cpu", "cuda", "auto"), "device", "must be cpu, cuda or auto")
        check(self.threads >= 1, "threads", "must be >= 1")

    def accum_steps(self, world_size: int = 1) -> int:
        """Micro-batches per optimizer step so that all processes together see tokens_per_step."""
        micro = self.batch_size * self.seq_len * world_size
        if self.tokens_per_step == 0:
            return 1
        if self.tokens_per_step % micro:
            raise UserError(f"params.yaml: pretrain.tokens_per_step ({self.tokens_per_step}) must be a multiple of "
                            f"batch_size * seq_len * processes = {self.batch_size} * {self.seq_len} * {world_size} "
                            f"= {micro}; change it, or set 0 for one micro-batch per step")
        return self.tokens_per_step // micro

    def loop(self, world_size: int = 1, flops_per_token: float = 0.0, peak_flops: float | None = None) -> LoopConfig:
        return LoopConfig(steps=self.steps, lr=self.lr, min_lr=self.min_lr, warmup_steps=self.warmup_steps,
                          weight_decay=self.weight_decay, beta1=self.beta1, beta2=self.beta2,
                          grad_clip=self.grad_clip, eval_every=self.eval_every,
                          checkpoint_every=self.checkpoint_every, schedule=self.schedule,
                          accum_steps=self.accum_steps(world_size), early_stop_patience=self.early_stop_patience,
                          on_nan=self.on_nan, compile=self.compile, sample_every=self.sample_every,
                          flops_per_token=flops_per_token, peak_flops=peak_flops or 0.0)


def run_key(params, seed: int, *input_hashes: str) -> str:
    """Identifies a training run by its params, seed and inputs; state from another key is stale."""
    blob = json.dumps({"params": asdict(params), "seed": seed, "inputs": list(input_hashes)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def sampler(model: GPT, tokenizer, prompts: list[str], max_new_tokens: int):
    """``sample(step)`` for the loop: greedy continuations of fixed prompts (deterministic, so
    the samples at a step are comparable across runs)."""
    from lib.infer.generate import generate  # generation is only needed when samples are asked for
    encoded = [[tokenizer.bos_id, *tokenizer.encode(p)] for p in prompts]

    def sample(step: int) -> dict[str, str]:
        out = {}
        for text, ids in zip(prompts, encoded):
            new = generate(model, ids, max_new_tokens, {tokenizer.eos_id})
            out[text] = tokenizer.decode(new)
        return out
    return sample


def save_models(out_dir: Path, config: ModelConfig, best: dict[str, torch.Tensor], final: dict[str, torch.Tensor],
                tokenizer_sha256: str, info: dict) -> None:
    """``out_dir`` = the best-by-val model (what downstream stages load) with the final model in
    ``out_dir/final``, written as one atomic directory."""
    model = GPT(config)
    with atomic_path(out_dir) as tmp:
        model.load_state_dict(best)
        save_model(tmp, model, tokenizer_sha256, {**info, "weights": "best"})
        model.load_state_dict(final)
        save_model(tmp / "final", model, tokenizer_sha256, {**info, "weights": "final"})
