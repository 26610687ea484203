"""The `pretrain:` section of params.yaml: the shared training keys (``TrainParams``) plus the
model, the data shape, sampling prompts and scaling out."""
from __future__ import annotations

from dataclasses import dataclass, field

from lib.core.errors import UserError
from lib.model.config import ModelConfig
from lib.core.params import check
from lib.train.params import RunPlan, TrainParams

DEFAULT_PROMPTS = ["MPI is", "To compile a CUDA kernel,", "OpenMP"]


@dataclass
class PretrainParams(TrainParams):
    """The `pretrain:` section: the shared training keys plus the model, the data shape, sampling
    prompts and scaling out."""
    init: str = "scratch"            # scratch | a base under models/base/ (HF Llama directory or .gguf): then
                                     # `model` is unused, the architecture is the base's (lib/hf/import_.py)
    model: ModelConfig = field(default_factory=ModelConfig)
    seq_len: int = 128
    tokens_per_step: int = 0         # tokens per optimizer step (gradient accumulation); 0: one micro-batch
    steps: int = 600
    eval_batches: int = 8
    sample_prompts: list[str] = field(default_factory=lambda: list(DEFAULT_PROMPTS))
    parallel: str = "ddp"            # under torchrun: ddp (replicas) | fsdp (sharded, for big models)
    peak_tflops: float = 0.0         # one device's bf16 peak for MFU; 0: looked up from the GPU's name

    def __post_init__(self):
        super().__post_init__()
        check(1 <= self.seq_len <= self.model.max_seq_len, "seq_len",
              f"must be between 1 and model.max_seq_len ({self.model.max_seq_len})")
        check(self.steps >= 1, "steps", "must be >= 1")
        check(self.tokens_per_step >= 0, "tokens_per_step", "must be >= 0")
        check(self.eval_batches >= 1, "eval_batches", "must be >= 1")
        check(self.parallel in ("ddp", "fsdp"), "parallel", "must be ddp or fsdp")
        check(self.peak_tflops >= 0, "peak_tflops", "must be >= 0")

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

    def plan(self, world_size: int = 1, flops_per_token: float = 0.0, peak_flops: float | None = None) -> RunPlan:
        return RunPlan(steps=self.steps, accum_steps=self.accum_steps(world_size),
                       flops_per_token=flops_per_token, peak_flops=peak_flops or 0.0)
