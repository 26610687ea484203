"""lm-evaluation-harness, run by its own code on the exported model, against our suite scorers:
identical acc / acc_norm / accuracy and per-request log-likelihoods within 1e-5, for a
multiple-choice suite and a cloze suite, with the task YAMLs lib/eval/harness.py writes; the
shipped task files are those YAMLs; a task that needs the network stops with one line.

Slow (importing the harness dominates): ``pytest -m slow tests/test_eval_harness.py``."""
from __future__ import annotations

import json
import os
import random
from pathlib import Path

import numpy as np
import pytest
import yaml

from lib.core.errors import UserError
from lib.eval.lambada import score_items
from lib.eval.suites import KINDS, ScoreSettings, cloze, multiple_choice
from lib.eval.harness import check_tasks, local_task_names, run_tasks, suite_task, write_suite_task
from lib.hf.export import export_model
from lib.model.checkpoint import save_model
from lib.tokenizer import MODEL_FILE, Tokenizer
from lib.tokenizer.build import TokenizerParams, train_tokenizer

pytest.importorskip("transformers")
pytest.importorskip("lm_eval")
from tests.test_hf_lmeval import WORDS, passages, train_tiny  # noqa: E402  (the same tiny trained model)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parent.parent
LL_TOL = 1e-5


def mc_records(n: int, seed: int) -> list[dict]:
    """A walk's start as the question; its true next words and three other words as options."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        start = rng.randrange(len(WORDS))
        question = " ".join(WORDS[(start + k) % len(WORDS)] for k in range(rng.randint(3, 8)))
        right = " ".join(WORDS[(start + k) % len(WORDS)] for k in range(8, 8 + rng.randint(1, 3)))
        wrong = set()
        while len(wrong) < 3:
            w = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 3)))
            if w != right:
                wrong.add(w)
        choices = sorted(wrong)
        answer = i % 4
        choices.insert(answer, right)
        out.append({"id": f"q{i}", "question": question, "choices": choices, "answer": answer, "rationale": ""})
    return out


def cloze_records(n: int, seed: int) -> list[dict]:
    return [{"id": f"c{i}", "context": p.rsplit(" ", 1)[0], "target": " " + p.rsplit(" ", 1)[1]}
            for i, p in enumerate(passages(n, seed))]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("harness")
    texts = passages(300, 0)
    (tmp / "tok").mkdir()
    (tmp / "tok" / MODEL_FILE).write_bytes(train_tokenizer(texts, TokenizerParams(vocab_size=420, num_threads=1),
                                                           ["MPI_Allreduce"], seed=0))
    tok = Tokenizer.load(tmp / "tok")
    model = train_tiny(tok, texts)
    save_model(tmp / "ours", model, tok.sha256)
    export_model(tmp / "ours", tmp / "tok", tmp / "hf")
    return tmp, tok, model


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def harness_requests(raw: dict, task: str) -> list[list[float]]:
    """Per document (in doc_id order), the harness's log-likelihood of each request."""
    samples = sorted(raw["samples"][task], key=lambda s: s["doc_id"])
    return [[float(r[0]) for r in s["filtered_resps"]] for s in samples]


def run_harness(tmp, task: str, kind: str, records: list[dict], bootstrap_iters: int) -> dict:
    """The harness's results for ``records`` as suite ``task`` of ``kind``, on the tiny model's export."""
    write_suite_task(tmp / "tasks", task, kind, write_jsonl(tmp / f"{task}.jsonl", records))
    manager = check_tasks([task], [str(tmp / "tasks")])
    return run_tasks(tmp / "hf", [task], manager, True, 8, log_samples=True, bootstrap_iters=bootstrap_iters)


def test_multiple_choice_equals_the_harness(tiny):
    tmp, tok, model = tiny
    records = mc_records(40, 1)
    harness = run_harness(tmp, "mc_tiny", "multiple_choice", records, bootstrap_iters=1)
    settings = ScoreSettings(batch_size=8)
    ours = multiple_choice.score(model, tok, records, settings)
    items, groups = multiple_choice.option_items(tok, records, True)
    lls, _ = score_items(model, items, "cpu", 8, False, groups=groups)
    theirs = [ll for doc in harness_requests(harness["_raw"], "mc_tiny") for ll in doc]
    print(f"\nmc: harness {harness['mc_tiny']} | ours {ours}; max |dll| {np.max(np.abs(lls - theirs)):.2e}")
    assert len(theirs) == len(lls) == 4 * len(records)
    assert np.max(np.abs(lls - np.array(theirs))) < LL_TOL
    assert harness["mc_tiny"]["acc"] == round(ours["acc"], 4) and harness["mc_tiny"]["acc_norm"] == round(ours["acc_norm"], 4)
    assert harness["mc_tiny"]["acc_stderr"] == round(ours["acc_stderr"], 4)
    assert 0 < ours["acc"] < 1 and ours["acc"] != ours["acc_norm"] or 0 < ours["acc_norm"] < 1


def test_cloze_equals_the_harness(tiny):
    tmp, tok, model = tiny
    records = cloze_records(30, 2)
    harness = run_harness(tmp, "cloze_tiny", "cloze", records, bootstrap_iters=0)
    ours = cloze.score(model, tok, records, ScoreSettings(batch_size=8))
    lls, _ = score_items(model, cloze.items_of(tok, records, True), "cpu", 8, False)
    theirs = np.array([doc[0] for doc in harness_requests(harness["_raw"], "cloze_tiny")])
    print(f"\ncloze: harness {harness['cloze_tiny']} | ours {ours}; max |dll| {np.max(np.abs(lls - theirs)):.2e}")
    assert np.max(np.abs(lls - theirs)) < LL_TOL
    assert harness["cloze_tiny"]["acc"] == round(ours["accuracy"], 4)
    assert abs(harness["cloze_tiny"]["perplexity"] - ours["perplexity"]) / ours["perplexity"] < 1e-5
    assert ours["truncated"] > 0 and 0 < ours["accuracy"] < 1


@pytest.mark.parametrize("name,kind", [("hpc_mc", "multiple_choice"), ("hpc_heldout", "text")])
def test_shipped_task_files_match_the_suites(name, kind):
    shipped = yaml.safe_load((ROOT / "lib" / "hf" / "tasks" / f"{name}.yaml").read_text())
    assert shipped == suite_task(name, kind, f"data/eval/{name}.jsonl")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert {"name": name, "kind": kind, "path": f"data/eval/{name}.jsonl"} in params["eval"]["suites"]
    assert name in local_task_names([str(ROOT / "lib" / "hf" / "tasks")])


def test_unknown_and_online_only_tasks_stop_with_one_line(tmp_path, monkeypatch):
    (tmp_path / "tasks").mkdir()
    yaml_task = suite_task("needs_hub", "cloze", "x.jsonl") | {"dataset_path": "hpc-lm/definitely-not-cached",
                                                               "dataset_kwargs": None}
    (tmp_path / "tasks" / "needs_hub.yaml").write_text(yaml.safe_dump(yaml_task), encoding="utf-8")
    with pytest.raises(UserError) as err:
        check_tasks(["needs_hub"], [str(tmp_path / "tasks")])
    msg = str(err.value)
    assert msg.startswith("eval.harness_tasks: 'needs_hub' needs data that is not on this machine")
    assert "HF_DATASETS_OFFLINE=0" in msg and "\n" not in msg
    with pytest.raises(UserError, match="eval.harness_include: .*nope: no such folder"):
        check_tasks(["x"], [str(tmp_path / "nope")])
