"""Where a stage's figures go: the headline ones to ``metrics/<stage>.json``, the rest (timings
apart) to ``data/stats/<stage>.json``, the timings to ``metrics/timing/<stage>.json``.

`dvc metrics show` prints one column per distinct key over all metrics files, and `dvc exp show`
one per changed key, with the file's path prepended to a name two files share. So the metrics
files hold a few short keys each (``docs`` shared by the data stages, where no experiment
changes it alone) and no timings: a timing changes on every run, so every rerun stage would add a
changed column to `dvc exp show --only-changed`. Both tables fit 200 columns
(tests/test_figures.py holds them to it).

The detailed counters (per-rule clean counts, per-type scrape counts, tokenizer and SFT data
statistics, ...) go to the stats file, a cached DVC output of the stage. Timings (seconds,
tokens/s, MFU) go to a git-tracked file that is no DVC output, like metrics/env/: a cached output
must be the same bytes for the same commit and params. `lib.report` reads all three.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Union

from lib.core.io import write_json

METRICS_DIR = Path("metrics")
STATS_DIR = Path("data/stats")
TIMING_DIR = Path("metrics/timing")
TIMING = ("seconds", "tokens_per_s", "mfu")  # top-level keys that vary run to run

Pick = Union[str, Callable[[dict], Any]]  # a dotted path into the stage's figures, or a function of them


def _eval_headline(figures: dict) -> dict[str, Any]:
    """Per model, val bits per byte and the first multiple-choice suite's accuracy, keyed
    ``<suite>@<sha8>`` as in the stage's figures: a changed suite file gives a new key, so
    ``dvc metrics diff`` shows it as removed and added, never as a delta."""
    mc = [name for name, s in figures.get("suites", {}).items() if s["kind"] == "multiple_choice"][:1]
    flat: dict[str, Any] = {}
    for model in ("base", "pretrain", "sft"):
        scores = figures.get(model) or {}
        if "val_bpb" in scores:
            flat[f"{model}.val_bpb"] = scores["val_bpb"]
        for key, value in scores.items():
            if mc and key.split("@")[0] == mc[0] and "@" in key:
                flat[f"{model}.{key}"] = value["acc"]
    return flat


# stage -> {headline key: where it comes from in the stage's figures}; the order is the file's.
HEADLINE: dict[str, dict[str, Pick] | Callable[[dict], dict[str, Any]]] = {
    "scrape": {"docs": "ok", "failed": "failed"},
    "clean": {"docs": "docs_kept", "dropped": "dropped_total"},
    "corpus": {"docs": "docs"},
    "tokenizer": {"bytes_per_token": "val_bytes_per_token"},
    "pack": {"tokens": "train.tokens"},
    "pretrain": {"steps": "last_step", "val_bpb": "best_val_bpb"},
    "sft": {"val_loss": "best_val_loss"},
    "eval": _eval_headline,
}


def _get(figures: dict, pick: Pick) -> Any:
    if callable(pick):
        return pick(figures)
    value: Any = figures
    for part in pick.split("."):
        value = value[part]
    return value


def _nest(flat: dict[str, Any]) -> dict:
    """{"a.b": 1} -> {"a": {"b": 1}}: DVC flattens nested keys back to "a.b" in its tables."""
    out: dict = {}
    for key, value in flat.items():
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def headline(stage: str, figures: dict) -> dict:
    """The figures of ``stage`` that its metrics file holds, under their short names."""
    spec = HEADLINE[stage]
    flat = spec(figures) if callable(spec) else {key: _get(figures, pick) for key, pick in spec.items()}
    return _nest(flat)


def split(figures: dict) -> tuple[dict, dict]:
    """(everything but the timings, the timings) of a stage's figures; timings are top-level keys."""
    return ({k: v for k, v in figures.items() if k not in TIMING},
            {k: figures[k] for k in TIMING if k in figures})


def write_figures(stage: str, figures: dict, root: str | Path = ".") -> dict:
    """metrics/<stage>.json (headline), data/stats/<stage>.json (the rest) and
    metrics/timing/<stage>.json; returns the headline."""
    top = headline(stage, figures)
    stats, timing = split(figures)
    write_json(Path(root) / STATS_DIR / f"{stage}.json", stats)
    write_json(Path(root) / TIMING_DIR / f"{stage}.json", timing)
    write_json(Path(root) / METRICS_DIR / f"{stage}.json", top)
    return top
