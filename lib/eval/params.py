"""The `eval:` section of params.yaml."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from lib.core.params import PARAMS_FILE, check, from_mapping, read_params


@dataclass
class SuiteSpec:
    """One fixed eval suite: a JSONL file of one kind (lib/eval/suites/)."""
    name: str
    kind: str
    path: str

    def __post_init__(self):
        # the kind is checked against lib/eval/suites' registry when the eval stage reads the suite:
        # importing the scorers here would make the corpus stage (which reads eval.suites) depend on them
        check(bool(self.name) and "@" not in self.name and "." not in self.name, "name",
              f"{self.name!r}: a non-empty name without '@' or '.' (metrics keys are name@hash)")


DEFAULT_SUITES = [SuiteSpec("hpc_mc", "multiple_choice", "data/eval/hpc_mc.jsonl"),
                  SuiteSpec("hpc_heldout", "text", "data/eval/hpc_heldout.jsonl")]


@dataclass
class EvalParams:
    suites: list[SuiteSpec] = field(default_factory=lambda: list(DEFAULT_SUITES))
    harness_tasks: list[str] = field(default_factory=list)  # lm-evaluation-harness task names, run offline
    harness_include: list[str] = field(default_factory=lambda: ["lib/hf/tasks"])  # task YAML folders
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
        names = [s.name for s in self.suites]
        dup = sorted({n for n in names if names.count(n) > 1})
        check(not dup, "suites", f"two suites named {', '.join(dup)}; metrics are keyed by suite name")


SUITE_KEYS = ("suites", "lambada_files")  # the eval keys the corpus stage decontaminates against


def load_suite_params(path: str = PARAMS_FILE) -> EvalParams:
    """EvalParams from eval.suites and eval.lambada_files alone (the rest at their defaults), both
    validated: the corpus stage declares just these two keys in dvc.yaml, so an edit of
    eval.batch_size does not rerun the pipeline from the corpus on."""
    section = read_params(path).get("eval") or {}
    picked = {k: v for k, v in section.items() if k in SUITE_KEYS} if isinstance(section, dict) else section
    return from_mapping(EvalParams, picked, f"{path}: eval")  # a non-mapping: one line naming it
