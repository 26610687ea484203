"""lib.report: the run comparison report, on a hand-made git + DVC repository with two commits
and one experiment ref (no pipeline run, so the whole file takes seconds)."""
from __future__ import annotations

import json
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from lib.core.errors import UserError
from lib.report.cli import main
from lib.report.data import ABSENT, build, change, parse_curve
from lib.report.render import nice_ticks, render_html, render_markdown

from tests.pipeline_helpers import ROOT, dvc, env, run

DVC_YAML = """\
stages:
  train:
    cmd: "true"
    params: [seed, pretrain]
    metrics:
      - metrics/eval.json:
          cache: false
"""

BASE = {
    "params.yaml": "seed: 1\npretrain:\n  lr: 0.003\n  steps: 10\n",
    "metrics/eval.json": {"pretrain": {"val_loss": 5.0, "lambada_acc": 0.1}},
    "metrics/plots/pretrain/train.csv": "step,tokens,train_loss,lr,grad_norm\n0,8,7.5,0.001,1.0\n1,16,7.0,0.002,0.9\n2,24,6.5,0.003,0.8\n",
    "metrics/plots/pretrain/val.csv": "step,tokens,val_loss\n0,0,7.6\n2,24,6.6\n",
    "models/samples/eval.json": {"pretrain": {"What is MPI?": "old answer <b>&"}, "sft": {"Hi": "old sft"}},
    # lib/core/figures.py: the details beside the headline metrics, and the timings
    "data/stats/pretrain.json": {"best_step": 300, "lora": {"enabled": False}, "stopped_by": "steps"},
    "metrics/timing/pretrain.json": {"seconds": 100.0},
}
NEW = {
    "params.yaml": "seed: 1\npretrain:\n  lr: 0.001\n  steps: 10\n",
    "metrics/eval.json": {"pretrain": {"val_loss": 4.0, "lambada_acc": 0.1}, "sft": {"val_loss": 3.5}},
    # an extra column and a blank cell: tolerated
    "metrics/plots/pretrain/train.csv": "step,tokens,train_loss,lr,grad_norm,extra\n0,8,7.4,0.001,1.0,x\n1,16,6.8,0.001,,y\n2,24,6.0,0.001,0.7,z\n",
    "metrics/plots/pretrain/val.csv": "step,tokens,val_loss\n0,0,7.5\n2,24,6.1\n",
    "metrics/plots/sft/val.csv": "step,tokens,val_loss\n0,0,3.9\n5,40,3.5\n",  # absent at BASE
    "models/samples/eval.json": {"pretrain": {"What is MPI?": "new answer | pipes"}, "sft": {"Hi": "new sft"}},
    "data/stats/pretrain.json": {"best_step": 200, "lora": {"enabled": False}, "stopped_by": "early_stop_patience"},
    "metrics/timing/pretrain.json": {"seconds": 80.0},
}


def write_files(repo: Path, files: dict) -> None:
    for rel, content in files.items():
        path = repo / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content))


def git(repo: Path, *args: str) -> str:
    return run(["git", *args], repo).stdout.strip()


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """Commit `base` (tagged), commit 2 on main, and experiment `exp-lr` based on main."""
    repo = tmp_path_factory.mktemp("report") / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "test@example.com")
    git(repo, "config", "user.name", "test")
    dvc(repo, "init", "-q")
    dvc(repo, "config", "core.analytics", "false")
    (repo / "dvc.yaml").write_text(DVC_YAML)
    write_files(repo, BASE)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "base")
    git(repo, "tag", "base")
    write_files(repo, NEW)
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", "new")
    head = git(repo, "rev-parse", "HEAD")
    # An experiment as `dvc exp run` stores it: a commit on top of the baseline, referenced
    # under refs/exps/<baseline sha[:2]>/<baseline sha[2:]>/<name>, on no branch.
    write_files(repo, {"params.yaml": NEW["params.yaml"].replace("0.001", "0.0005")})
    git(repo, "add", "params.yaml")
    exp = git(repo, "commit-tree", git(repo, "write-tree"), "-p", head, "-m", "exp")
    git(repo, "update-ref", f"refs/exps/{head[:2]}/{head[2:]}/exp-lr", exp)
    git(repo, "reset", "-q", "--hard", "HEAD")
    return repo


def test_html_report_between_commits(repo, tmp_path):
    out = tmp_path / "report.html"
    main(["--repo", str(repo), "--a", "base", "--b", "main", "-o", str(out)])
    html = out.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html and "http" not in html.split("<svg")[0]
    # params: only the changed one by default, with old, new and change
    # (a param has no better or worse: uncoloured)
    assert re.search(r"pretrain\.lr</td><td class=\"num\">0\.003</td><td class=\"num\">0\.001</td>"
                     r"<td class=\"num\">-0\.002</td><td class=\"num\">-66\.67%</td>", html)
    assert "pretrain.steps" not in html and "2 unchanged params not shown" in html
    # metrics: delta and percent, a lower loss coloured better; a key new at B is "added" with A
    # absent; the unchanged metric is counted, not listed
    assert re.search(r"pretrain\.val_loss</td><td class=\"num\">5</td><td class=\"num\">4</td>"
                     r"<td class=\"num better\">-1</td><td class=\"num better\">-20\.00%</td>", html)
    assert "lambada_acc" not in html and "2 unchanged metrics not shown" in html  # lora.enabled too
    # the stage's details and timings, from their own files, in the same table
    assert re.search(r"data/stats/pretrain\.json</td><td>best_step</td><td class=\"num\">300</td>"
                     r"<td class=\"num\">200</td>", html)
    assert re.search(r"stopped_by</td><td class=\"num\">steps</td><td class=\"num\">early_stop_patience</td>", html)
    assert re.search(r"metrics/timing/pretrain\.json</td><td>seconds</td><td class=\"num\">100</td>"
                     r"<td class=\"num\">80</td><td class=\"num better\">-20</td>", html)
    assert re.search(r"sft\.val_loss</td><td class=\"absent\">absent</td><td class=\"num\">3\.5</td>"
                     r"<td class=\"num\">added</td>", html)
    # curves: one well-formed SVG per curve with data at either side (pretrain x4, sft val_loss)
    svgs = re.findall(r"<svg.*?</svg>", html, re.S)
    assert len(svgs) == 5
    for svg in svgs:
        ET.fromstring(svg)
    sft_val = next(s for s in svgs if 'aria-label="sft val_loss"' in s)
    assert "A: base" in sft_val and "(absent)" in sft_val and sft_val.count("<polyline") == 1
    assert "absent at both revisions: sft train_loss" in html
    # samples: both answers, escaped
    assert "old answer &lt;b&gt;&amp;" in html and "new answer | pipes" in html
    assert "old sft" in html and "new sft" in html


def test_markdown_report_workspace_and_absent_files(repo, tmp_path):
    """Default sides (HEAD vs workspace), an uncommitted edit, and a file deleted in the workspace."""
    try:
        (repo / "params.yaml").write_text(NEW["params.yaml"].replace("steps: 10", "steps: 20"))
        (repo / "models/samples/eval.json").unlink()
        (repo / "metrics/plots/pretrain/val.csv").unlink()
        (repo / "metrics/eval.json").write_text('{"pretrain": ')  # unreadable: a note, not a crash
        out = tmp_path / "report.md"
        main(["--repo", str(repo), "-o", str(out)])
        md = out.read_text()
    finally:
        git(repo, "checkout", "-q", "--", ".")
    assert "<svg" not in md and md.startswith("# Run comparison: A = HEAD (")
    assert "| params.yaml | pretrain.steps | 10 | 20 | +10 | +100.00% |" in md
    assert re.search(r"- metrics: metrics/eval\.json at workspace could not be read \(.*corrupted\)", md)
    assert "| metrics/eval.json | pretrain.val_loss | 4 | absent | removed |  |" in md
    # curves as first/last/min; the deleted val curve is absent on the workspace side
    assert "| pretrain train_loss | 7.4 | 6 | 6 | 7.4 | 6 | 6 |" in md
    assert "| pretrain val_loss | 7.5 | 6.1 | 6.1 | absent | absent | absent |" in md
    assert "models/samples/eval.json: absent at workspace" in md
    assert "| What is MPI? | new answer \\| pipes | absent |" in md


def test_experiment_name_resolves(repo):
    report = build(repo, "HEAD", "exp-lr")
    assert report.b.sha == git(repo, "rev-parse", "refs/exps/" + "/".join(
        [report.a.sha[:2], report.a.sha[2:], "exp-lr"]))
    assert [(r.key, r.old, r.new) for r in report.params] == [("pretrain.lr", 0.001, 0.0005)]
    assert "exp-lr (" in render_html(report)
    # nothing changed: nothing listed (the timing file's seconds are a timing, not a hidden metric)
    assert report.metrics == [] and report.hidden_metrics == 3 + 3
    everything = build(repo, "HEAD", "exp-lr", show_all=True)
    assert "| metrics/eval.json | pretrain.val_loss | 4 | 4 | 0 | 0% |" in render_markdown(everything)


def test_unknown_revision_is_one_clean_message(repo, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lib.report", "--repo", str(repo), "--a", "no-such-rev",
                           "-o", str(tmp_path / "r.html")], cwd=ROOT, env=env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: unknown revision 'no-such-rev'") and "Traceback" not in proc.stderr
    assert not (tmp_path / "r.html").exists()


def test_not_a_dvc_repo(tmp_path):
    with pytest.raises(UserError, match="not inside a DVC repository"):
        build(tmp_path, "HEAD", "workspace")


def test_direction_colours_better_and_worse():
    from lib.report.data import DiffRow, direction
    assert direction("pretrain.lambada.lambada_hpc.accuracy") is True
    assert direction("tokens_per_s") is True and direction("attention_cache_hit_rate") is True
    for key in ("best_val_loss", "sft.val_perplexity", "mean_token_nll", "val_bpb", "seconds", "val_loss_before"):
        assert direction(key) is False, key
    assert direction("tokens_seen") is None and direction("params") is None
    assert DiffRow("metrics/pretrain.json", "tokens_per_s", 1000.0, 380.0).verdict == "worse"  # -62%: red
    assert DiffRow("metrics/pretrain.json", "best_val_loss", 3.0, 2.5).verdict == "better"
    assert DiffRow("metrics/pretrain.json", "tokens_seen", 10, 20).verdict is None
    assert DiffRow("params.yaml", "pretrain.lr", 0.1, 0.2).verdict is None


def test_helpers():
    assert change(4, 5) == (1, 25.0)
    assert change(0, 2) == (2, None) and change("a", "b") is None and change(True, False) is None
    assert change(ABSENT, 1.0) is None
    assert nice_ticks(0.3, 7.6) == [0, 2, 4, 6, 8]
    assert nice_ticks(5.0, 5.0)[0] <= 5.0 <= nice_ticks(5.0, 5.0)[-1]
    assert parse_curve("step,x,train_loss\n0,1,2.5\n1,2,nan\n2,,\n3,4,1.5\n", "train_loss") == [(0, 2.5), (3, 1.5)]
    assert parse_curve("step,val_loss\n0,1\n", "train_loss") is None and parse_curve(None, "x") is None
