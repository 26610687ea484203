"""End to end: `dvc repro` on a tiny config in a fresh git + DVC repo, then the stage-skipping
contract -- a param change reruns exactly the stages that read it and those downstream."""
import json

import pytest

from tests.pipeline_helpers import dvc, make_repo, repro, set_param

ALL = ["scrape", "clean", "corpus", "tokenizer", "pack", "pretrain", "sft", "eval"]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    path = make_repo(tmp_path_factory.mktemp("e2e") / "repo")
    assert repro(path) == ALL
    return path


def load(repo, rel):
    return json.loads((repo / rel).read_text())


def test_every_stage_leaves_outputs_and_metrics(repo):
    for rel in ["data/raw/manifest.jsonl", "data/clean/docs.jsonl", "data/clean/rejects.jsonl",
                "data/corpus/train.jsonl", "data/corpus/val.jsonl", "data/corpus/terms.txt",
                "models/tokenizer/tokenizer.model", "data/shards/meta.json",
                "models/pretrain/model.safetensors", "models/pretrain/config.json",
                "models/sft/model.safetensors", "models/sft/config.json",
                "metrics/plots/pretrain/train.csv", "metrics/plots/sft/val.csv", "metrics/samples.json"]:
        assert (repo / rel).is_file(), rel
    for stage in ALL:
        assert load(repo, f"metrics/{stage}.json"), stage
    assert load(repo, "metrics/clean.json")["docs_kept"] > 20
    assert load(repo, "metrics/pack.json")["train"]["tokens"] > 10_000
    pretrain = load(repo, "metrics/pretrain.json")
    assert pretrain["best_val_loss"] < pretrain["val_unigram_entropy"] + 2.0  # tiny model, 12 steps
    evaluation = load(repo, "metrics/eval.json")
    for model in ("pretrain", "sft"):
        assert 0.0 <= evaluation[model]["lambada"]["lambada_hpc"]["accuracy"] <= 1.0
        assert evaluation[model]["val_bpb"] > 0


def test_nothing_to_do_after_a_run(repo):
    assert "up to date" in dvc(repo, "status").stdout
    assert repro(repo) == []


def test_pretrain_param_reruns_pretrain_sft_eval(repo):
    set_param(repo, "pretrain.steps", 14)
    assert dvc(repo, "status").stdout.count("changed") >= 1
    assert repro(repo) == ["pretrain", "sft", "eval"]


def test_clean_param_reruns_clean_and_everything_after(repo):
    set_param(repo, "clean.min_words", 450)  # drops the shortest sample documents: clean's output changes
    assert repro(repo) == ALL[1:]


def test_bad_param_stops_with_one_clear_message(repo):
    set_param(repo, "pack.dtpye", "uint16")
    proc = dvc(repo, "repro", "pack", check=False)
    assert proc.returncode != 0
    output = proc.stdout + proc.stderr
    assert "pack.dtpye: unknown key; did you mean 'dtype'?" in output
    assert "Traceback" not in output
