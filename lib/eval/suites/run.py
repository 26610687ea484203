"""Every suite of ``eval.suites`` for one model: what the eval and eval_base stages share.

Scores are keyed ``<name>@<first 8 hex of the file's sha256>`` (``Suite.key``) and each suite's
identity goes under ``"suites"``: metrics/eval.json's contract (lib/eval/suites/reader.py)."""
from __future__ import annotations

import torch

from lib.eval.params import EvalParams
from lib.eval.suites import KINDS, ScoreSettings
from lib.eval.suites.reader import Suite, read_suite
from lib.tokenizer import Tokenizer


def read_suites(params: EvalParams) -> list[Suite]:
    """Read and validate every listed suite before any model is loaded: a bad file stops at once."""
    return [read_suite(s.name, s.kind, s.path, f"eval.suites[{i}]") for i, s in enumerate(params.suites)]


def settings_of(params: EvalParams, device: torch.device | str, progress: bool = True) -> ScoreSettings:
    return ScoreSettings(params.prepend_bos, params.batch_size, str(device), params.max_new_tokens, progress)


def score_suites(model: torch.nn.Module, tokenizer: Tokenizer, suites: list[Suite], settings: ScoreSettings,
                 chat: bool) -> dict[str, dict]:
    """``{suite.key: metrics}``; suites of a chat-only kind (generation) only when ``chat``."""
    out = {}
    for suite in suites:
        kind = KINDS[suite.kind]
        if kind.chat_only and not chat:
            continue
        out[suite.key] = {k: rounded(v) for k, v in kind.score(model, tokenizer, suite.records, settings).items()}
    return out


def identities(suites: list[Suite]) -> dict[str, dict]:
    return {s.name: s.identity() for s in suites}


def rounded(value):
    return round(value, 4) if isinstance(value, float) else value
