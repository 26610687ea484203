"""What a suite kind is: the fields of its records, the checks beyond their types, how a model is
scored on it and the lm-evaluation-harness task that scores it the same way. A new kind is one
file defining a ``SuiteKind`` plus one entry in ``lib/eval/suites/__init__.py``'s registry."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from lib.tokenizer import Tokenizer


@dataclass(frozen=True)
class ScoreSettings:
    """The eval params every kind may need."""
    prepend_bos: bool = True
    batch_size: int = 16
    device: str = "cpu"
    max_new_tokens: int = 48  # generation kind only
    progress: bool = False
    shared_prefix: bool = True  # multiple choice: the question once per group (False under external attention)


Scorer = Callable[[torch.nn.Module, Tokenizer, list[dict], ScoreSettings], dict]


@dataclass(frozen=True)
class SuiteKind:
    name: str
    fields: dict[str, type]            # required keys besides "id", and their JSON types
    score: Scorer                      # the kind's metrics, named as lm-evaluation-harness names them
    check: Callable[[dict, str], None] = lambda record, where: None  # raises UserError naming `where`
    chat_only: bool = False            # scored for the SFT model only (needs the chat template)
    harness_task: Callable[[str, str], dict] | None = None  # (task name, jsonl path) -> task YAML dict
