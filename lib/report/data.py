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

Timing fields (seconds, tokens/s, MFU) differ between identical runs, so they are kept apart and
never counted as changes. A suite whose file changed is paired into one "not comparable" row
(lib/report/suites.py), and B's metrics/eval.json gives the model x suite table.
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
from lib.report.metric_names import direction, is_timing
from lib.report.suites import EVAL_FILE, SuiteTable, domain_suites, suite_key_parts, table

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
    not_comparable: str | None = None  # why old and new measure different things (a suite changed)

    @property
    def changed(self) -> bool:
        return self.old != self.new

    @property
    def timing(self) -> bool:
        in_timing_file = Path(self.file).parent == TIMING_DIR  # every figure there is a timing
        return not self.file.endswith("params.yaml") and (in_timing_file or is_timing(self.key))

    @property
    def verdict(self) -> str | None:
        """'better' or 'worse' for a numeric change of a metric whose direction is known, else None."""
        c = change(self.old, self.new)
        if self.file.endswith("params.yaml") or self.not_comparable or c is None or c[0] == 0:
            return None
        up_is_good = direction(self.key)
        if up_is_good is None:
            return None
        return "better" if (c[0] > 0) == up_is_good else "worse"


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
    timings: list[DiffRow] = field(default_factory=list)  # seconds, tokens/s: not counted as changes
    suites: SuiteTable | None = None  # B's model x suite table from metrics/eval.json

    @property
    def changed_metrics(self) -> int:
        return sum(r.changed and not r.not_comparable for r in self.metrics)

    @property
    def not_comparable(self) -> int:
        return sum(bool(r.not_comparable) for r in self.metrics)


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


def mark_changed_suites(rows: list[DiffRow]) -> list[DiffRow]:
    """A suite whose file changed shows in DVC's diff as a removed key (``name@old hash``) and an
    added one (``name@new hash``): each such pair becomes one row, marked not comparable, with no
    change or verdict; so do the suite's own ``suites.<name>.*`` entries (hash, examples)."""
    groups: dict[tuple[str, str], list[tuple[DiffRow, str, str]]] = {}
    out = []
    for r in rows:
        parts = suite_key_parts(r.key)
        if parts is None:
            out.append(r)
        else:
            groups.setdefault((r.file, parts[0]), []).append((r, parts[1], parts[2]))
    changed: set[str] = {r.key.split(".")[1] for r in out
                         if r.key.startswith("suites.") and r.key.endswith(".sha256") and r.changed}
    for (file, stem), members in groups.items():
        gone = [(r, h) for r, _, h in members if r.new is ABSENT]
        came = [(r, h) for r, _, h in members if r.old is ABSENT]
        if len(members) == 2 and len(gone) == 1 and len(came) == 1:
            (ro, h1), (rn, h2), name = gone[0], came[0], members[0][1]
            changed.add(name)
            out.append(DiffRow(file, stem.replace("@*", f"@{h1}→{h2}"), ro.old, rn.new,
                               f"suite {name} changed ({h1} → {h2})"))
        else:
            out.extend(r for r, _, _ in members)
    out = [DiffRow(r.file, r.key, r.old, r.new, f"suite {r.key.split('.')[1]} changed")
           if r.key.startswith("suites.") and r.key.split(".")[1] in changed and r.changed else r for r in out]
    return sorted(out, key=lambda r: (r.file, r.key))


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
        table_, absent = samples(repo, side_a, side_b, notes)
        # every suite's scores live in the eval stage's cached stats; metrics/eval.json has the headline
        suites = table(read_output(repo, side_b, EVAL_FILE, notes),
                       domain_suites(read_text(top, side_b, "params.yaml")))
    timings = [r for r in metrics if r.timing]
    metrics = mark_changed_suites([r for r in metrics if not r.timing])
    keep = (lambda r: True) if show_all else (lambda r: r.changed)
    shown_params, shown_metrics, shown_timings = ([r for r in rows if keep(r)] for rows in (params, metrics, timings))
    return Report(side_a, side_b, shown_params, shown_metrics, curves(top, side_a, side_b), table_, absent,
                  hidden_params=len(params) - len(shown_params),
                  hidden_metrics=len(metrics) - len(shown_metrics), notes=notes,
                  timings=shown_timings, suites=suites)
