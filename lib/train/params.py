"""``TrainParams``: the training settings pretrain and SFT share, validated once.

``PretrainParams`` (lib/train/pretrain.py) and ``SFTParams`` (lib/train/sft.py) extend it with
what only they have, so both sections of params.yaml accept the same training keys with the
same meaning and checks, and the loop reads one type. The optimizer's keys are ``OptimParams``
(lib/train/optim.py), which ``TrainParams`` extends.
"""
from __future__ import annotations

from dataclasses import dataclass

from lib.core.params import check, check_choice
from lib.train.optim import OptimParams
from lib.train.schedule import SCHEDULES

DEVICES = ("cpu", "cuda", "auto")


@dataclass
class TrainParams(OptimParams):
    batch_size: int = 16             # sequences per micro-batch per process
    min_lr: float = 3e-4             # the schedule decays to this at the last step
    warmup_steps: int = 50
    schedule: str = "cosine"         # decay after warmup: a key of SCHEDULES (lib/train/schedule.py)
    grad_clip: float = 1.0           # <= 0: no clipping (the norm is still logged)
    eval_every: int = 100            # validate every N steps (and at the end)
    early_stop_patience: int = 0     # stop after this many validations without a new best; 0: never
    checkpoint_every: int = 100      # resumable training state every N steps
    on_nan: str = "stop"             # non-finite loss or gradient: stop (naming the step) | skip (the batch)
    compile: bool = False            # torch.compile the training forward/backward
    log_every: int = 10              # plain progress lines every N steps when no terminal is attached
    sample_every: int = 0            # greedy text samples every N steps (and at the end); 0: never
    sample_tokens: int = 24          # new tokens per sample
    device: str = "cpu"              # cpu | cuda | auto
    threads: int = 2                 # torch CPU threads; fixed so CPU runs are bit-reproducible

    def __post_init__(self):
        check(self.lr > 0, "lr", f"must be > 0, got {self.lr}")
        super().__post_init__()  # the optimizer keys (lib/train/optim.py)
        check(self.batch_size >= 1, "batch_size", "must be >= 1")
        check(0 < self.min_lr <= self.lr, "min_lr", f"must be > 0 and <= lr; got min_lr {self.min_lr}, "
              f"lr {self.lr}: raise lr or lower min_lr")
        check(self.warmup_steps >= 0, "warmup_steps", "must be >= 0")
        check_choice(self.schedule, SCHEDULES, "schedule", "schedule")
        check(0 <= self.beta1 < 1 and 0 <= self.beta2 < 1, "beta1", "beta1 and beta2 must be in [0, 1)")
        check(self.eval_every >= 1, "eval_every", "must be >= 1")
        check(self.checkpoint_every >= 1, "checkpoint_every", "must be >= 1")
        check(self.early_stop_patience >= 0, "early_stop_patience", "must be >= 0")
        check(self.on_nan in ("stop", "skip"), "on_nan", "must be stop or skip")
        check(self.log_every >= 1, "log_every", "must be >= 1")
        check(self.sample_every >= 0, "sample_every", "must be >= 0")
        check(self.sample_tokens >= 1, "sample_tokens", "must be >= 1")
        check(self.device in DEVICES, "device", f"must be one of {', '.join(DEVICES)}")
        check(self.threads >= 1, "threads", "must be >= 1")


@dataclass(frozen=True)
class RunPlan:
    """What the loop needs beyond the params, known only once data and model exist."""
    steps: int                       # optimizer steps in all
    accum_steps: int = 1             # micro-batches per optimizer step
    flops_per_token: float = 0.0     # for MFU; 0: not reported
    peak_flops: float = 0.0          # one device's peak FLOP/s; 0: MFU not reported

    def __post_init__(self):
        if self.steps < 1 or self.accum_steps < 1:
            raise ValueError(f"steps ({self.steps}) and accum_steps ({self.accum_steps}) must be >= 1")
