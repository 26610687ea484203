"""Figures a terminal can show (lib/core/figures.py): the metrics files of a real default run,
reshaped to their headline figures, make `dvc metrics show` and, after an experiment that changes
a pretrain param, `dvc exp show --only-changed` no wider than 200 columns; run by DVC itself in a
throwaway git + DVC repository with the project's dvc.yaml and params.yaml."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from lib.core.figures import HEADLINE, STATS_DIR, TIMING, TIMING_DIR, headline, write_figures
from tests.pipeline_helpers import ROOT, dvc, run

# Every figure each stage computed in the default run of commit 6f0e1eb (what its metrics file
# held then): the realistic values and key sets whose width DVC's tables show.
DEFAULT_RUN = json.loads((Path(__file__).parent / "data/default_run_figures.json").read_text())
WIDTH = 200
BRANCH = "baseline-before-lr-sweep"  # 24 characters, as wide as an experiment row "├── 1a2b3c4 [ashen-lobe]"


def widest(text: str) -> int:
    return max(len(line.rstrip()) for line in text.splitlines())


def perturbed(figures, factor: float = 0.93):
    """The same figures with every number changed: an experiment's worst case for --only-changed."""
    if isinstance(figures, dict):
        return {k: perturbed(v, factor) for k, v in figures.items()}
    if isinstance(figures, (int, float)) and not isinstance(figures, bool):
        return round(figures * factor + 1, 4)
    return figures


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("figures") / "repo"
    repo.mkdir()
    run(["git", "init", "-q", "-b", BRANCH], repo)
    run(["git", "config", "user.email", "test@example.com"], repo)
    run(["git", "config", "user.name", "test"], repo)
    dvc(repo, "init", "-q")
    dvc(repo, "config", "core.analytics", "false")
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(ROOT / name, repo / name)
    for stage, figures in DEFAULT_RUN.items():
        write_figures(stage, figures, repo)
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", "a default run"], repo)
    return repo


def test_every_stage_has_a_headline_and_no_timing_in_it():
    assert set(HEADLINE) == set(DEFAULT_RUN) == {"scrape", "clean", "corpus", "tokenizer", "pack", "pretrain",
                                                 "sft", "eval"}
    for stage, figures in DEFAULT_RUN.items():
        top = headline(stage, figures)
        assert top and all(v is not None for v in top.values()), stage
        assert not any(t in json.dumps(top) for t in TIMING), stage


def test_metrics_show_fits_200_columns(repo):
    out = dvc(repo, "metrics", "show").stdout
    assert len(out.splitlines()) == 1 + len(HEADLINE)  # a header and one row per metrics file
    assert widest(out) <= WIDTH, out
    # what left the metrics files is still there, in the cached stats file, and the timings apart
    stats = json.loads((repo / STATS_DIR / "clean.json").read_text())
    assert stats["rules"] == DEFAULT_RUN["clean"]["rules"] and "seconds" not in stats
    timing = json.loads((repo / TIMING_DIR / "pretrain.json").read_text())
    assert timing["seconds"] == DEFAULT_RUN["pretrain"]["seconds"]


def test_exp_show_only_changed_fits_200_columns_after_a_pretrain_experiment(repo):
    """pretrain.lr changed: pretrain, sft and eval rerun, and every one of their figures moves."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    params["pretrain"]["lr"] = params["pretrain"]["lr"] / 2
    try:
        (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        for stage in ("pretrain", "sft", "eval"):
            write_figures(stage, perturbed(DEFAULT_RUN[stage]), repo)
        out = dvc(repo, "exp", "show", "--only-changed", "--no-pager", "--md").stdout
    finally:
        run(["git", "checkout", "-q", "--", "."], repo)
    header = [cell.strip() for cell in out.splitlines()[0].strip("|").split("|")]
    assert "pretrain.lr" in header and "val_bpb" in header and "sft.val_bpb" in header, header
    assert not any(t in header for t in TIMING)
    # the terminal table: each column its widest cell plus 3 (padding and rule), plus the edge
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("|")]
    cells = [row for row in cells if not set("".join(row)) <= set("-: ")]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    widths[header.index("Created")] = max(widths[header.index("Created")], len("Dec 02, 2026"))  # today: "02:22 PM"
    width = 1 + sum(w + 3 for w in widths)  # as rich prints it (checked against the terminal table: 148 = 148)
    assert width <= WIDTH, (width, header)
