"""Fixed eval suites: the registry of suite kinds (one file each) and reading a suite file.

    KINDS["multiple_choice"].score(model, tokenizer, suite.records, settings)
"""
from __future__ import annotations

from lib.eval.suites import cloze, generation, multiple_choice, text
from lib.eval.suites.base import ScoreSettings, SuiteKind

KINDS: dict[str, SuiteKind] = {k.name: k for k in (text.KIND, cloze.KIND, multiple_choice.KIND, generation.KIND)}

__all__ = ["KINDS", "ScoreSettings", "SuiteKind"]
