"""The `sft:` section of params.yaml: the shared training keys plus the SFT data and LoRA. Reading,
encoding and batching the SFT data is ``lib.data.sft``'s."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lib.core.params import check
from lib.model.lora import LoRAParams
from lib.train.params import TrainParams


@dataclass
class SFTParams(TrainParams):
    """The `sft:` section: the shared training keys (``TrainParams``) plus the data and LoRA."""
    data: str = "data/sample/sft/hpc_instructions.jsonl"
    val_fraction: float = 0.1
    max_len: int = 256             # tokens per example (capped by the model's max_seq_len)
    truncate: Literal["truncate", "drop"] = "truncate"  # what to do with a longer example
    on_bad_record: Literal["error", "skip"] = "error"    # stop at a malformed record, or skip and count it
    epochs: int = 3
    lora: LoRAParams = field(default_factory=LoRAParams)
    # SFT's own defaults for shared keys: small batches, a gentler LR, no weight decay
    batch_size: int = 8
    lr: float = 1e-3
    min_lr: float = 1e-4
    warmup_steps: int = 10
    weight_decay: float = 0.0
    eval_every: int = 20
    checkpoint_every: int = 50
    sample_tokens: int = 64

    def __post_init__(self):
        super().__post_init__()
        check(0.0 < self.val_fraction < 1.0, "val_fraction", "must be between 0 and 1")
        check(self.max_len >= 8, "max_len", "must be >= 8")
        check(self.epochs >= 1, "epochs", "must be >= 1")
