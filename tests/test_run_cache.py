"""DVC never throws away a trained model: every stage keeps DVC's run cache on, so a failed or
reverted run restores its outputs instead of recomputing them; and metrics files hold numbers and
short labels only, so `dvc metrics show/diff` and `dvc exp show` print sane tables.

The end-to-end tests share one tiny pipeline run in a fresh git + DVC repository (see
tests/pipeline_helpers.py) and run in file order.
"""
from __future__ import annotations

import hashlib
import json
import time

import pytest
import yaml

from tests.pipeline_helpers import ROOT, dvc, make_repo, repro, run, set_param

MAX_LABEL = 40  # a metric value that is a string must be a short label


def stage_outs(dvc_yaml: dict) -> list[tuple[str, str, dict]]:
    """(stage, path, options) for every entry under outs:, metrics: and plots: of every stage."""
    found = []
    for name, stage in dvc_yaml["stages"].items():
        for kind in ("outs", "metrics", "plots"):
            for entry in stage.get(kind) or []:
                path, options = next(iter(entry.items())) if isinstance(entry, dict) else (entry, {})
                found.append((name, kind, path, options or {}))
    return found


def test_no_stage_switches_its_run_cache_off():
    """DVC saves no run-cache entry for a stage with `cache: false` under outs: (metrics and plots
    may be git-tracked), so one such entry costs the model on every failed or reverted run."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    bad = [f"{stage}: {path}" for stage, kind, path, options in stage_outs(spec)
           if kind == "outs" and options.get("cache") is False]
    assert not bad, f"cache: false among outs (move it to its own cached output or to plots): {bad}"
    assert not [s for s, stage in spec["stages"].items() if stage.get("always_changed")]


def prose(value, where: str = "") -> list[str]:
    """Every string value in a metrics file that is longer than a label or spans lines."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in prose(v, f"{where}.{k}" if where else str(k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in prose(v, f"{where}[{i}]")]
    if isinstance(value, str) and (len(value) > MAX_LABEL or "\n" in value):
        return [f"{where}: {value[:60]!r}..."]
    return []


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path = make_repo(tmp_path_factory.mktemp("runcache") / "repo")
    repro(path)
    run(["git", "add", "-A"], path)
    run(["git", "commit", "-qm", "first run"], path)
    return path


def weights(repo) -> str:
    return hashlib.sha256((repo / "models/pretrain/model.safetensors").read_bytes()).hexdigest()


def timed_repro(repo) -> tuple[str, float]:
    started = time.perf_counter()
    proc = dvc(repo, "repro")
    return proc.stdout + proc.stderr, time.perf_counter() - started


@pytest.mark.slow
def test_metrics_hold_numbers_and_short_labels(repo):
    spec = yaml.safe_load((repo / "dvc.yaml").read_text())
    files = [path for _, kind, path, _ in stage_outs(spec) if kind == "metrics"]
    assert len(files) >= 8
    for path in files:
        assert not prose(json.loads((repo / path).read_text())), path
    # One row per metrics file, every cell a number or a short label (the header row is as wide as
    # the metric names: one column per key, DVC's layout).
    rows = dvc(repo, "metrics", "show").stdout.splitlines()[1:]
    assert sorted(row.split()[0] for row in rows) == sorted(files)
    cells = [cell for row in rows for cell in row.split()[1:]]
    assert max(len(cell) for cell in cells) <= MAX_LABEL


@pytest.mark.slow
def test_a_params_typo_costs_no_training(repo, capsys):
    before = weights(repo)
    set_param(repo, "pretrain.lrr", 0.1)
    failed = dvc(repo, "repro", check=False)
    assert failed.returncode != 0
    assert "pretrain.lrr: unknown key; did you mean 'lr'?" in failed.stdout + failed.stderr
    run(["git", "checkout", "params.yaml"], repo)  # the fix
    log, seconds = timed_repro(repo)
    assert "Stage 'pretrain' is cached - skipping run, checking out outputs" in log
    assert "Running stage 'pretrain'" not in log and "Running stage 'sft'" not in log
    assert weights(repo) == before
    assert "up to date" in dvc(repo, "status").stdout
    with capsys.disabled():
        print(f"\ntypo -> fix -> dvc repro: {seconds:.1f} s, weights sha256 {before[:16]} unchanged")


@pytest.mark.slow
def test_reverting_a_param_after_an_experiment_does_not_retrain(repo):
    before = weights(repo)
    set_param(repo, "pretrain.lr", 0.012)
    assert repro(repo) == ["pretrain", "sft", "eval"]
    assert weights(repo) != before
    run(["git", "checkout", "params.yaml"], repo)  # back to the committed params
    log, _ = timed_repro(repo)
    assert "Running stage" not in log.replace("Running stage 'check'", "")
    for stage in ("pretrain", "sft", "eval"):
        assert f"Stage '{stage}' is cached - skipping run" in log, stage
    assert weights(repo) == before
    assert "up to date" in dvc(repo, "status").stdout
