"""The `eval:` section of params.yaml."""
from __future__ import annotations

from dataclasses import dataclass, field

from lib.core.params import check


@dataclass
class EvalParams:
    lambada_files: list[str] = field(default_factory=lambda: ["data/sample/eval/lambada_hpc.jsonl"])
    prepend_bos: bool = True
    batch_size: int = 16
    val_batches: int | None = None  # None: the complete val split (exact bits per byte)
    prompts: str = "data/sample/eval/prompts.txt"
    max_new_tokens: int = 48
    device: str = "cpu"
    threads: int = 2

    def __post_init__(self):
        check(self.batch_size >= 1, "batch_size", "must be >= 1")
        check(self.val_batches is None or self.val_batches >= 1, "val_batches", "must be >= 1 or null (all)")
        check(len(self.lambada_files) >= 1, "lambada_files", "list at least one LAMBADA jsonl file")
        check(self.max_new_tokens >= 1, "max_new_tokens", f"must be >= 1, got {self.max_new_tokens}")
        check(self.device in ("cpu", "cuda", "auto"), "device", "must be cpu, cuda or auto")
        check(self.threads >= 1, "threads", "must be >= 1")
