"""What lib.report compares: revisions resolved, params/metrics diffs, curves and samples read.

Params and metrics come from DVC's Python API (``Repo.params.diff`` / ``Repo.metrics.diff``),
which reads exactly the files dvc.yaml declares, understands "workspace" on either side and
reports per-file errors instead of failing. Revisions are resolved once, up front, with DVC's
own resolver, so experiment names work wherever a commit does. Curves are git-tracked and read
with ``git show REV:./path``; samples are a DVC-cached output, read at a revision through DVC's
file system (from the local cache); the workspace is read from disk. A file missing at one side
is None. Beside the headline figures of the metrics files, each stage's detailed figures
(``data/stats/<stage>.json``, cached like the samples) and timings (``metrics/timing/<stage>.json``,
git-tracked like the curves) are compared too, in the same table (lib/core/figures.py).
"""
from __future__ import annotations

import csv
import io
import json
import math
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lib.core.errors import UserError
from lib.core.figures import HEADLINE, STATS_DIR, TIMING_DIR

WORKSPACE = "workspace"
ABSENT = None  # a value or file that does not exist at one revision

# (stage, file under metrics/plots/<stage>/, column) for each chart, in report order.
CURVES: tuple[tuple[str, str, str], ...] = (
    ("pretrain", "train.csv", "train_loss"),
    ("pretrain", "val.csv", "val_loss"),
    ("pretrain", "train.csv", "lr"),
    ("pretrain", "train.csv", "grad_norm"),
    ("sft", "train.csv", "train_loss"),
    ("sft", "val.csv", "val_loss"),
    ("sft", "train.csv", "lr"),
    ("sft", "train.csv", "grad_norm"),
)
SAMPLES = "models/samples/eval.json"  # the eval stage's answers of both models to fixed prompts

# Which way is better, by the last part of a metric's key; a key matching none is only "changed".
LOWER_IS_BETTER = ("loss", "perplexity", "nll", "bpb", "seconds", "skipped_steps", "fallbacks",
                   "misses", "bad_records", "dropped", "failed")
HIGHER_IS_BETTER = ("accuracy", "acc", "tokens_per_s", "mfu", "hit_rate", "hits")


@dataclass(frozen=True)
class Side:
    """One side of the comparison: what the user typed and the commit it names (None: workspace)."""
    rev: str
    sha: str | None

    @property
    def label(self) -> str:
        if self.sha is None:
            return WORKSPACE
        short = self.sha[:7]
        return self.rev if self.rev.startswith(short) else f"{self.rev} ({short})"


@dataclass(frozen=True)
class DiffRow:
    file: str
    key: str
    old: Any  # ABSENT when the key (or its file) does not exist at A
    new: Any

    @property
    def changed(self) -> bool:
        return self.old != self.new

    @property
    def verdict(self) -> str | None:
        """'better' or 'worse' for a numeric change of a metric whose direction is known, else None."""
        c = change(self.old, self.new)
        if self.file.endswith("params.yaml") or c is None or c[0] == 0:
            return None
        up_is_good = direction(self.key)
        if up_is_good is None:
            return None
        return "better" if (c[0] > 0) == up_is_good else "worse"


def direction(key: str) -> bool | None:
    """True: higher is better; False: lower is better; None: unknown (a count, a setting)."""
    name = key.rsplit(".", 1)[-1]
    if any(name == w or name.endswith("_" + w) or name.startswith(w + "_") for w in HIGHER_IS_BETTER):
        return True
    if any(name == w or name.endswith("_" + w) or name.startswith(w + "_") or f"_{w}_" in name
           for w in LOWER_IS_BETTER):
        return False
    return None


@dataclass
class Curve:
    stage: str
    file: str
    column: str
    a: list[tuple[float, float]] | None  # (step, value) points; None: file or column absent
    b: list[tuple[float, float]] | None

    @property
    def title(self) -> str:
        return f"{self.stage} {self.column}"

    @property
    def path(self) -> str:
        return f"metrics/plots/{self.stage}/{self.file}"


@dataclass
class Report:
    a: Side
    b: Side
    params: list[DiffRow]
    metrics: list[DiffRow]
    curves: list[Curve]
    # model -> [(prompt, answer at A, answer at B)]; None for a model absent at both sides
    samples: dict[str, list[tuple[str, str | None, str | None]]]
    samples_absent: tuple[bool, bool] = (False, False)
    hidden_params: int = 0  # unchanged params left out (see --all)
    hidden_metrics: int = 0  # unchanged metrics left out (see --all)
    notes: list[str] = field(default_factory=list)


# --- revisions and files ------------------------------------------------------------------------

def resolve(repo, rev: str) -> Side:
    """A commit sha for a commit/branch/tag/experiment name or exp ref; None for the workspace."""
    if rev == WORKSPACE:
        return Side(rev, None)
    from dvc.scm import RevError, resolve_rev
    try:
        return Side(rev, resolve_rev(repo.scm, rev))
    except RevError:
        raise UserError(f"unknown revision '{rev}': not a commit, branch, tag or DVC experiment "
                        f"in {repo.root_dir} (see `git log`, `dvc exp list`; "
                        f"'{WORKSPACE}' means uncommitted files)") from None
    except Exception as err:  # e.g. a repository without commits
        raise UserError(f"cannot resolve revision '{rev}': {err}") from None


def read_text(root: Path, side: Side, path: str) -> str | None:
    """The file's text at that side, or None when it does not exist there."""
    if side.sha is None:
        p = root / path
        return p.read_text(encoding="utf-8") if p.is_file() else None
    # "REV:./path" is relative to cwd, so a DVC repo in a git subdirectory works too.
    proc = subprocess.run(["git", "show", f"{side.sha}:./{path}"], cwd=root,
                          capture_output=True)
    return proc.stdout.decode("utf-8") if proc.returncode == 0 else None


# --- params and metrics -------------------------------------------------------------------------

def _rows(result: dict, what: str, labels: dict[str, str], notes: list[str]) -> list[DiffRow]:
    """Sorted rows from a DVC diff result; read errors other than a missing file become notes."""
    for rev, err in sorted((result.get("errors") or {}).items()):
        errs = err.items() if isinstance(err, dict) else [("", err)]
        for path, e in sorted(errs, key=lambda pe: pe[0]):
            if not isinstance(e, FileNotFoundError):  # a missing file is just "absent"
                where = f"{path} at {labels.get(rev, rev)}" if path else labels.get(rev, rev)
                notes.append(f"{what}: {where} could not be read ({e})")
    rows = []
    for path, keys in (result.get("diff") or {}).items():
        for key, d in keys.items():
            rows.append(DiffRow(path, key, d.get("old"), d.get("new")))
    return sorted(rows, key=lambda r: (r.file, r.key))


def diffs(repo, a: Side, b: Side, notes: list[str]) -> tuple[list[DiffRow], list[DiffRow]]:
    ra, rb = a.sha or WORKSPACE, b.sha or WORKSPACE
    labels = {ra: a.label, rb: b.label}
    params = _rows(repo.params.diff(a_rev=ra, b_rev=rb, all=True), "params", labels, notes)
    metrics = _rows(repo.metrics.diff(a_rev=ra, b_rev=rb, all=True), "metrics", labels, notes)
    return params, metrics


def change(old: Any, new: Any) -> tuple[float, float | None] | None:
    """(absolute, percent) change for two numbers; percent is None when old is 0."""
    def num(v):
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    if not (num(old) and num(new)):
        return None
    delta = new - old
    return delta, (delta / abs(old) * 100.0 if old else None)


def _flat(data: Any, prefix: str = "") -> dict[str, Any]:
    """{"a": {"b": 1}} -> {"a.b": 1}, as DVC flattens metrics; lists stay whole values."""
    if not isinstance(data, dict):
        return {prefix: data} if prefix else {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
    return out


def _json_or_note(text: str | None, path: str, side: Side, notes: list[str]) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        notes.append(f"{path} at {side.label}: invalid JSON ({err.msg}); shown as absent")
        return None


def figures(repo, a: Side, b: Side, notes: list[str]) -> list[DiffRow]:
    """Rows for every stage's stats (cached output) and timings (git-tracked), key by key."""
    root = Path(repo.root_dir)
    rows = []
    for stage in HEADLINE:
        for path, cached in ((f"{STATS_DIR}/{stage}.json", True), (f"{TIMING_DIR}/{stage}.json", False)):
            old, new = (_json_or_note(read_output(repo, side, path, notes) if cached else read_text(root, side, path),
                                      path, side, notes) for side in (a, b))
            if old is None and new is None:
                continue
            fa, fb = _flat(old or {}), _flat(new or {})
            rows += [DiffRow(path, key, fa.get(key, ABSENT), fb.get(key, ABSENT)) for key in sorted(set(fa) | set(fb))]
    return rows


# --- curves and samples -------------------------------------------------------------------------

def parse_curve(text: str | None, column: str) -> list[tuple[float, float]] | None:
    """(step, value) pairs from a curve CSV; tolerant of extra columns and blank cells."""
    if text is None:
        return None
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or column not in reader.fieldnames:
        return None
    points = []
    for i, row in enumerate(reader):
        try:
            x = float(row["step"]) if row.get("step") not in (None, "") else float(i)
            y = float(row[column])
        except (TypeError, ValueError):
            continue
        if math.isfinite(x) and math.isfinite(y):
            points.append((x, y))
    return points


def curves(root: Path, a: Side, b: Side) -> list[Curve]:
    cache: dict[tuple[Side, str], str | None] = {}

    def text(side, path):
        if (side, path) not in cache:
            cache[side, path] = read_text(root, side, path)
        return cache[side, path]

    out = []
    for stage, file, column in CURVES:
        path = f"metrics/plots/{stage}/{file}"
        out.append(Curve(stage, file, column, parse_curve(text(a, path), column),
                         parse_curve(text(b, path), column)))
    return out


def load_samples(text: str | None, side: Side, notes: list[str]) -> dict | None:
    if text is None:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        notes.append(f"{SAMPLES} at {side.label}: invalid JSON ({err.msg}); shown as absent")
        return None
    if not isinstance(data, dict):
        notes.append(f"{SAMPLES} at {side.label}: expected an object; shown as absent")
        return None
    return {str(m): v for m, v in data.items() if isinstance(v, dict)}


def read_output(repo, side: Side, path: str, notes: list[str]) -> str | None:
    """A DVC-cached output's text at that side, or None (absent, or its data not in the local
    cache: then a note says how to get it)."""
    if side.sha is None:
        return read_text(Path(repo.root_dir), side, path)
    import dvc.api
    from dvc.exceptions import PathMissingError
    try:
        return dvc.api.read(path, repo=repo.root_dir, rev=side.sha, encoding="utf-8")
    except (FileNotFoundError, PathMissingError):  # not an output at that revision
        return None
    except Exception as err:  # e.g. the object is not in the local cache
        notes.append(f"{path} at {side.label} could not be read ({type(err).__name__}: {err}); "
                     f"`dvc pull` may fetch it")
        return None


def samples(repo, a: Side, b: Side, notes: list[str]):
    sa = load_samples(read_output(repo, a, SAMPLES, notes), a, notes)
    sb = load_samples(read_output(repo, b, SAMPLES, notes), b, notes)
    models = sorted(set(sa or {}) | set(sb or {}), key=lambda m: (m not in ("pretrain", "sft"), m))
    table = {}
    for model in models:
        ma, mb = (sa or {}).get(model, {}), (sb or {}).get(model, {})
        prompts = list(ma) + [p for p in mb if p not in ma]
        table[model] = [(p, _str(ma.get(p)), _str(mb.get(p))) for p in prompts]
    return table, (sa is None, sb is None)


def _str(v: Any) -> str | None:
    return None if v is None else v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)


# --- the report ---------------------------------------------------------------------------------

def build(root: str | Path = ".", a: str = "HEAD", b: str = WORKSPACE, show_all: bool = False) -> Report:
    """The comparison of ``a`` and ``b``; unchanged params and metrics are counted, not listed,
    unless ``show_all``."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo
    try:
        repo = Repo(str(root))
    except NotDvcRepoError:
        raise UserError(f"{Path(root).resolve()}: not inside a DVC repository "
                        f"(run from the project, or pass --repo)") from None
    with repo:
        side_a, side_b = resolve(repo, a), resolve(repo, b)
        top = Path(repo.root_dir)
        notes: list[str] = []
        params, metrics = diffs(repo, side_a, side_b, notes)
        metrics += figures(repo, side_a, side_b, notes)
        table, absent = samples(repo, side_a, side_b, notes)
    shown_params = params if show_all else [r for r in params if r.changed]
    shown_metrics = metrics if show_all else [r for r in metrics if r.changed]
    return Report(side_a, side_b, shown_params, shown_metrics, curves(top, side_a, side_b), table, absent,
                  hidden_params=len(params) - len(shown_params),
                  hidden_metrics=len(metrics) - len(shown_metrics), notes=notes)
