"""The report on eval suites: the base/pretrain/sft x suite table of metrics/eval.json in the eval
contract's shape (tests/fixtures/eval_contract.json), forgetting flags, a changed suite shown as
not comparable (never a delta), timings not counted as changes, lower-is-better figures."""
from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import pytest

from lib.report.cli import main
from lib.report.data import DiffRow, build, direction, mark_changed_suites
from lib.report.metric_names import is_timing
from lib.report.render import render_html, render_markdown
from lib.report.suites import domain_suites, table
from tests.pipeline_helpers import dvc, run

from lib.core.figures import headline  # noqa: E402

FIXTURE = json.loads((Path(__file__).parent / "fixtures" / "eval_contract.json").read_text())
PARAMS = """\
seed: 1
eval:
  suites:
    - {name: hpc_mc, kind: multiple_choice, path: data/eval/hpc_mc.jsonl}
    - {name: hpc_heldout, kind: text, path: data/eval/hpc_heldout.jsonl}
    - {name: domain_cloze, kind: cloze, path: data/corpus/domain_cloze.jsonl}
"""
DVC_YAML = """\
stages:
  eval:
    cmd: "true"
    params: [seed, eval]
    outs:
      - data/stats/eval.json
    metrics:
      - metrics/eval.json:
          cache: false
      - metrics/pretrain.json:
          cache: false
"""
PRETRAIN = {"best_val_loss": 4.8, "seconds": 148.4, "tokens_per_s": 7031.2, "mfu": 0.01, "eta_s": 0.0}
NEW_MC = "77aa0000" + "1" * 56  # the question file was edited: a new hash


def edited_suite(data: dict) -> dict:
    """hpc_mc's file changed (new hash, new scores); LAMBADA unchanged but scored better."""
    data = copy.deepcopy(data)
    data["suites"]["hpc_mc"] = {**data["suites"]["hpc_mc"], "sha256": NEW_MC, "examples": 170}
    for model in ("base", "pretrain", "sft"):
        scores = data[model].pop("hpc_mc@1a2b3c4d")
        data[model]["hpc_mc@77aa0000"] = {k: round(v * 1.2, 4) for k, v in scores.items()}
    data["pretrain"]["lambada_hpc@5e5e5e5e"].update(accuracy_stderr=0.05, perplexity=20.1)
    data["pretrain"]["hpc_heldout@9f8e7d6c"]["bpb"] = 1.1
    data["seconds"] = 40.2
    return data


def rerun(data: dict) -> dict:
    """The same commit and params run again: only timings differ."""
    data = copy.deepcopy(data)
    data["seconds"], data["pretrain"]["seconds"], data["sft"]["seconds"] = 29.9, 13.1, 9.2
    return data


def commit(repo: Path, message: str, eval_json: dict, pretrain: dict) -> None:
    (repo / "metrics").mkdir(exist_ok=True)
    (repo / "metrics/eval.json").write_text(json.dumps(headline("eval", eval_json), indent=1))
    (repo / "metrics/pretrain.json").write_text(json.dumps(pretrain))
    (repo / "data/stats").mkdir(parents=True, exist_ok=True)  # all figures: the report's suite table
    (repo / "data/stats/eval.json").write_text(json.dumps(eval_json, indent=1))
    dvc(repo, "commit", "-f", "-q")
    run(["git", "add", "-A"], repo)
    run(["git", "commit", "-qm", message], repo)
    run(["git", "tag", message], repo)


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = tmp_path_factory.mktemp("suites") / "repo"
    repo.mkdir()
    run(["git", "init", "-q", "-b", "main"], repo)
    run(["git", "config", "user.email", "t@example.com"], repo)
    run(["git", "config", "user.name", "t"], repo)
    dvc(repo, "init", "-q")
    (repo / "dvc.yaml").write_text(DVC_YAML)
    (repo / "params.yaml").write_text(PARAMS)
    commit(repo, "one", FIXTURE, PRETRAIN)
    commit(repo, "two", edited_suite(FIXTURE), PRETRAIN)
    commit(repo, "again", rerun(edited_suite(FIXTURE)),
           {**PRETRAIN, "seconds": 151.0, "tokens_per_s": 6890.5, "mfu": 0.009, "eta_s": 1.5})
    return repo


def test_table_and_forgetting_from_the_contract_fixture():
    t = table(json.dumps(FIXTURE), domain_suites(PARAMS))
    assert t.models == ["base", "pretrain", "sft"]
    suites = [r.suite for r in t.rows]
    # domain suites first, then the general benchmarks; stderr is shown beside its metric, not a row
    assert suites.index("hpc_mc@1a2b3c4d") < suites.index("arc_easy@abcdef01")
    assert not any(r.metric.endswith("_stderr") for r in t.rows)
    acc = next(r for r in t.rows if r.suite == "arc_easy@abcdef01" and r.metric == "acc")
    assert (acc.kind, acc.general, acc.cells["base"].value, acc.cells["base"].stderr) == ("multiple_choice", True, 0.5842, 0.0101)
    flags = {(f.suite, f.metric, f.model) for f in t.forgetting}
    # arc_easy acc: 0.5842 -> 0.5602 / 0.5513 (drops 0.024 and 0.033 > 0.0101); acc_norm of sft
    # drops 0.0105 > 0.0102; pretrain's acc_norm (0.0047) and LAMBADA (0.025 < 0.0554) are noise
    assert flags == {("arc_easy@abcdef01", "acc", "pretrain"), ("arc_easy@abcdef01", "acc", "sft"),
                     ("arc_easy@abcdef01", "acc_norm", "sft")}


def test_domain_suite_drop_is_not_forgetting_and_perplexity_rise_is():
    data = copy.deepcopy(FIXTURE)
    data["pretrain"]["hpc_mc@1a2b3c4d"]["acc"] = 0.1  # a domain suite falls: not "forgetting"
    data["base"]["lambada_hpc@5e5e5e5e"]["perplexity_stderr"] = 1.0
    data["pretrain"]["lambada_hpc@5e5e5e5e"]["perplexity"] = 23.0  # lower is better: a rise of 1.3 > 1.0
    flags = {(f.suite, f.metric, f.model) for f in table(json.dumps(data), domain_suites(PARAMS)).forgetting}
    assert ("hpc_mc@1a2b3c4d", "acc", "pretrain") not in flags
    assert ("lambada_hpc@5e5e5e5e", "perplexity", "pretrain") in flags
    assert ("lambada_hpc@5e5e5e5e", "perplexity", "sft") in flags  # 21.7 -> 24.8
    data["base"]["lambada_hpc@5e5e5e5e"]["perplexity_stderr"] = 5.0  # now both rises are within noise
    flags = {(f.suite, f.metric) for f in table(json.dumps(data), domain_suites(PARAMS)).forgetting}
    assert ("lambada_hpc@5e5e5e5e", "perplexity") not in flags
    assert table(json.dumps({"pretrain": {"val_loss": 4.0}}), set()) is None  # an older eval.json


def test_lower_is_better_names():
    for key in ("lambada.lambada_hpc.accuracy_stderr", "pretrain.hpc_mc@1a2b3c4d.acc_stderr",
                "acc_norm_stderr", "perplexity", "val_bpb", "loss", "nll", "seconds"):
        assert direction(key) is False, key
    for key in ("acc", "acc_norm", "accuracy", "exact_match", "f1", "sft.gen@12345678.f1"):
        assert direction(key) is True, key
    assert DiffRow("metrics/eval.json", "pretrain.lambada.accuracy_stderr", 0.0214, 0.0200).verdict == "better"
    assert DiffRow("metrics/eval.json", "pretrain.x@12345678.perplexity", 30.0, 25.0).verdict == "better"
    assert DiffRow("metrics/eval.json", "pretrain.x@12345678.acc_norm", 0.3, 0.25).verdict == "worse"
    assert all(is_timing(k) for k in ("seconds", "pretrain.seconds", "tokens_per_s", "mfu", "eta_s", "load_ms"))
    assert not any(is_timing(k) for k in ("steps", "acc", "tokens_seen", "best_val_loss", "examples"))


def test_changed_suite_is_not_comparable_never_a_delta(repo, tmp_path):
    report = build(repo, "one", "two")
    rows = {r.key: r for r in report.metrics}
    mc = rows["pretrain.hpc_mc@1a2b3c4d→77aa0000.acc"]
    assert (mc.old, mc.new, mc.verdict) == (0.4375, 0.525, None)
    assert mc.not_comparable == "suite hpc_mc changed (1a2b3c4d → 77aa0000)"
    assert not any(k.startswith("pretrain.hpc_mc@") and "→" not in k for k in rows)  # no removed/added pair
    assert rows["suites.hpc_mc.examples"].not_comparable and rows["suites.hpc_mc.examples"].verdict is None
    # an unchanged suite compares as usual, lower-is-better the right way round
    assert rows["pretrain.lambada_hpc@5e5e5e5e.accuracy_stderr"].verdict == "better"
    assert rows["pretrain.lambada_hpc@5e5e5e5e.perplexity"].verdict == "better"
    assert rows["pretrain.hpc_heldout@9f8e7d6c.bpb"].verdict == "better"
    # 3 models x 4 metrics, the suite's hash and size (data/stats/eval.json), and the 3 models'
    # headline accuracy (metrics/eval.json)
    assert report.not_comparable == 3 * 4 + 2 + 3
    assert report.changed_metrics == 3
    md = render_markdown(report)
    line = next(x for x in md.splitlines() if "pretrain.hpc_mc@1a2b3c4d→77aa0000.acc |" in x)
    assert "not comparable: suite hpc_mc changed" in line and "+" not in line and "%" not in line
    html = render_html(report)
    assert "not comparable: suite hpc_mc changed (1a2b3c4d → 77aa0000)" in html


def run_report(repo, out, capsys, a: str, b: str) -> str:
    """The report CLI from commit ``a`` to ``b`` into ``out``; returns what it printed."""
    main(["--repo", str(repo), "--a", a, "--b", b, "-o", str(out)])
    return capsys.readouterr().out


def test_identical_rerun_shows_no_changed_metrics(repo, tmp_path, capsys):
    out = tmp_path / "r.md"
    printed = run_report(repo, out, capsys, "two", "again")
    assert "0 metrics changed; 7 timing fields differ (not counted)" in printed
    report = build(repo, "two", "again")
    assert report.metrics == [] and report.changed_metrics == 0
    assert {(r.file, r.key) for r in report.timings} == {
        ("data/stats/eval.json", "seconds"), ("data/stats/eval.json", "pretrain.seconds"),
        ("data/stats/eval.json", "sft.seconds"),
        ("metrics/pretrain.json", "seconds"), ("metrics/pretrain.json", "tokens_per_s"),
        ("metrics/pretrain.json", "mfu"), ("metrics/pretrain.json", "eta_s")}
    md = out.read_text()
    assert "0 metrics changed; 7 timing fields differ (not counted)." in md
    assert "### Timings" in md


def test_report_prints_the_suite_table(repo, tmp_path, capsys):
    out = tmp_path / "r.html"
    printed = run_report(repo, out, capsys, "one", "one")
    assert "| suite | kind | metric | base | pretrain | sft |" in printed
    assert re.search(r"\| arc_easy@abcdef01 \| multiple_choice \| acc \| 0\.5842 ± 0\.01 \| "
                     r"0\.5602 ± 0\.01 \(forgetting\) \| 0\.5513 ± 0\.01 \(forgetting\) \|", printed)
    assert "| hpc_mc@1a2b3c4d | multiple_choice, domain | acc | 0.3125 ± 0.037 | 0.4375 ± 0.039 | 0.425 ± 0.039 |" in printed
    assert "- forgetting: arc_easy@abcdef01 acc: 0.5842 (base) → 0.5602 (pretrain)" in printed
    html = out.read_text()
    assert "Eval suites at one" in html and 'class="num worse">0.5602 ± 0.01 (forgetting)' in html


def test_pairing_needs_one_removed_and_one_added_key():
    a = DiffRow("m.json", "pretrain.s@11111111.acc", 0.5, None)
    b = DiffRow("m.json", "pretrain.s@22222222.acc", None, 0.6)
    (row,) = mark_changed_suites([a, b])
    assert row.key == "pretrain.s@11111111→22222222.acc" and row.not_comparable
    only_removed = mark_changed_suites([a])  # a suite dropped from the params: just removed
    assert only_removed == [a]
