"""Eval suites in the report: the model x suite table of one run, forgetting flags, and the
pairing of metrics whose suite file changed between two runs.

metrics/eval.json keys each suite's scores by ``<name>@<first 8 hex of its sha256>`` (see the
eval contract in README 'Evaluation'), so a changed suite file is a removed key plus an added key.
Here such a pair is shown as one row, "not comparable", never as a delta. Forgetting is a drop,
from the base model to an adapted one, of a general benchmark's score by more than the base
score's standard error; general means not one of the user's domain suites (eval.suites).
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from lib.report.metric_names import direction

ABSENT = None
MODELS = ("base", "pretrain", "sft")
ADAPTED = ("pretrain", "sft")  # scored against "base" for forgetting
EVAL_FILE = "data/stats/eval.json"  # all of the eval stage's figures (lib/core/figures.py)
_SUITE_KEY = re.compile(r"^(?P<name>[^.@]+)@(?P<hash>[0-9a-f]{8})$")


@dataclass
class Cell:
    value: float
    stderr: float | None = None


@dataclass
class SuiteRow:
    """One metric of one suite, across the models."""
    suite: str   # name@hash8, as in metrics/eval.json
    kind: str    # from the file's "suites" map; "" when it is not there (LAMBADA, harness tasks)
    general: bool
    metric: str
    cells: dict[str, Cell]  # model -> score


@dataclass(frozen=True)
class Forgetting:
    suite: str
    metric: str
    model: str
    base: float
    adapted: float
    stderr: float

    def __str__(self) -> str:
        return (f"{self.suite} {self.metric}: {self.base:.4g} (base) → {self.adapted:.4g} ({self.model}), "
                f"a drop larger than its standard error {self.stderr:.4g}")


@dataclass
class SuiteTable:
    models: list[str]
    rows: list[SuiteRow]
    forgetting: list[Forgetting] = field(default_factory=list)


def domain_suites(params_text: str | None) -> set[str]:
    """The names in eval.suites of a params.yaml's text (empty when absent or unreadable)."""
    try:
        data = yaml.safe_load(params_text or "") or {}
        return {str(s["name"]) for s in (data.get("eval") or {}).get("suites") or [] if isinstance(s, dict)}
    except (yaml.YAMLError, AttributeError, KeyError, TypeError):
        return set()


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def table(eval_text: str | None, domain: set[str]) -> SuiteTable | None:
    """The table of a metrics/eval.json text in the contract's shape; None when it holds no
    ``name@hash`` blocks (an older eval.json, or none)."""
    try:
        data = json.loads(eval_text) if eval_text else {}
    except json.JSONDecodeError:
        return None
    kinds = {n: str(v.get("kind", "")) for n, v in (data.get("suites") or {}).items() if isinstance(v, dict)}
    models = [m for m in MODELS if isinstance(data.get(m), dict)]
    models += sorted(m for m, v in data.items() if m not in MODELS and m != "suites" and isinstance(v, dict)
                     and any(_SUITE_KEY.match(k) for k in v))
    rows: dict[tuple[str, str], SuiteRow] = {}
    for model in models:
        for key, scores in data[model].items():
            m = _SUITE_KEY.match(key)
            if not m or not isinstance(scores, dict):
                continue
            name = m["name"]
            for metric, value in scores.items():
                if metric.endswith("_stderr") or not _num(value) or direction(metric) is None:
                    continue
                stderr = scores.get(f"{metric}_stderr")
                row = rows.setdefault((key, metric), SuiteRow(key, kinds.get(name, ""), name not in domain, metric, {}))
                row.cells[model] = Cell(float(value), float(stderr) if _num(stderr) else None)
    if not rows:
        return None
    ordered = sorted(rows.values(), key=lambda r: (r.general, r.suite, r.metric))
    return SuiteTable(models, ordered, forgetting(ordered))


def forgetting(rows: list[SuiteRow]) -> list[Forgetting]:
    """General-benchmark drops from base to an adapted model larger than the base's stderr.
    'Drop' follows the metric's direction: accuracy down, perplexity or bits per byte up."""
    out = []
    for row in rows:
        base = row.cells.get("base")
        if not row.general or base is None or base.stderr is None:
            continue
        for model in ADAPTED:
            cell = row.cells.get(model)
            if cell is None:
                continue
            drop = base.value - cell.value if direction(row.metric) else cell.value - base.value
            if drop > base.stderr:
                out.append(Forgetting(row.suite, row.metric, model, base.value, cell.value, base.stderr))
    return out


def suite_key_parts(key: str) -> tuple[str, str, str] | None:
    """("pretrain.hpc_mc@*.acc", "hpc_mc", "1a2b3c4d") for a flattened metrics key that holds a
    suite block; None for any other key."""
    parts = key.split(".")
    for i, part in enumerate(parts):
        m = _SUITE_KEY.match(part)
        if m:
            stem = ".".join(parts[:i] + [f"{m['name']}@*"] + parts[i + 1:])
            return stem, m["name"], m["hash"]
    return None
