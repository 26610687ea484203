"""The eval stage end to end on tiny artifacts built in a temporary directory: metrics keyed per
model, per LAMBADA file and per suite with its content hash (what `dvc metrics diff` shows), the
base model's scores merged from the eval_base stage, and loud errors on bad inputs."""
from __future__ import annotations

import importlib
import json
import math

import pytest
import torch
import yaml

from lib.model.checkpoint import save_model
from lib.core.io import write_json
from lib.model.config import ModelConfig
from lib.model.gpt import GPT
from lib.data.pack import PackParams, pack_meta, pack_split
from lib.data.shards import META_FILE
from lib.tokenizer import Tokenizer
from lib.tokenizer.build import TokenizerParams, train_tokenizer

TEXT = ("The node sends a message to every rank. Each process reads the input file and the cache line "
        "bounces between cores. Threads share memory on the same socket; the warp runs both branches.\n")
PASSAGES = ["The node sends a message to every rank", "Each process reads the input file",
            'He said "the cache line bounces between cores."', "Threads share memory on the\nsame socket"]

SUITES = {
    "mc": [{"id": "a", "question": "Which call sums over ranks?", "choices": ["MPI_Allreduce", "a warp"], "answer": 0},
           {"id": "b", "question": "What shares memory?", "choices": ["the node", "threads", "a rank"], "answer": 1}],
    "cl": [{"id": "a", "context": "The node sends a message to every", "target": " rank"},
           {"id": "b", "context": "the cache line bounces between", "target": " cores"}],
    "tx": [{"id": "a", "text": TEXT}, {"id": "b", "text": "Threads share memory on the same socket."}],
    "qa": [{"id": "a", "prompt": "What is MPI?", "answer": "a message passing interface"}],
}
KINDS = {"mc": "multiple_choice", "cl": "cloze", "tx": "text", "qa": "generation"}


def flatten(d: dict, prefix: str = "") -> dict:
    """Nested keys joined with dots, as `dvc metrics show/diff` displays them."""
    out = {}
    for k, v in d.items():
        out.update(flatten(v, f"{prefix}{k}.") if isinstance(v, dict) else {f"{prefix}{k}": v})
    return out


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tok_bytes = train_tokenizer([TEXT] * 40, TokenizerParams(vocab_size=320, num_threads=1), [], seed=1)
    (tmp_path / "models/tokenizer").mkdir(parents=True)
    (tmp_path / "models/tokenizer/tokenizer.model").write_bytes(tok_bytes)
    tok = Tokenizer(tok_bytes)
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus/val.jsonl").write_text("".join(json.dumps({"text": d}) + "\n" for d in [TEXT * 3, TEXT[:90]]),
                                               encoding="utf-8")
    pack = PackParams(shard_tokens=1024, workers=1)
    meta = pack_meta(tok, pack)  # shards exactly as the pack stage writes them
    meta["splits"]["val"] = pack_split(tmp_path / "corpus/val.jsonl", tmp_path / "data/shards/val", tok, pack)
    write_json(tmp_path / "data/shards" / META_FILE, meta)
    for seed, name in [(0, "pretrain"), (1, "sft")]:
        torch.manual_seed(seed)
        model = GPT(ModelConfig(n_layer=1, n_head=2, n_kv_head=2, d_model=16, d_ff=32, max_seq_len=16,
                                vocab_size=tok.vocab_size))
        save_model(tmp_path / "models" / name, model, tok.sha256)
    (tmp_path / "eval").mkdir()
    for name in ("set_a", "set_b"):
        (tmp_path / f"eval/{name}.jsonl").write_text(
            "".join(json.dumps({"text": p}) + "\n" for p in PASSAGES), encoding="utf-8")
    (tmp_path / "eval/prompts.txt").write_text("What is MPI?\n\nWhat is a warp?\n", encoding="utf-8")
    for name, records in SUITES.items():
        (tmp_path / f"eval/{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    params = {"seed": 1, "eval": {"lambada_files": ["eval/set_a.jsonl", "eval/set_b.jsonl"],
                                  "suites": [{"name": n, "kind": k, "path": f"eval/{n}.jsonl"} for n, k in KINDS.items()],
                                  "prompts": "eval/prompts.txt", "max_new_tokens": 3, "batch_size": 3,
                                  "val_batches": None}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    return tmp_path


def run_eval():
    from lib.core.stage import run_stage
    run_stage(importlib.import_module("stages.eval").main)


def test_metrics_per_model_and_file(project):
    run_eval()
    metrics = json.loads((project / "data/stats/eval.json").read_text())  # every figure; the headline:
    mc = next(key for key in metrics["pretrain"] if key.startswith("mc@"))  # the multiple-choice suite
    assert json.loads((project / "metrics/eval.json").read_text()) == {
        model: {"val_bpb": metrics[model]["val_bpb"], mc: metrics[model][mc]["acc"]} for model in ("pretrain", "sft")}
    flat = flatten(metrics)
    for model in ("pretrain", "sft"):
        for f in ("set_a", "set_b"):
            for key in ("accuracy", "perplexity", "mean_token_nll", "passages", "target_tokens"):
                assert isinstance(flat[f"{model}.lambada.{f}.{key}"], (int, float)), key
            assert flat[f"{model}.lambada.{f}.passages"] == len(PASSAGES)
            assert flat[f"{model}.lambada.{f}.truncated"] >= 1  # window of 16 tokens
        for key in ("val_loss", "val_perplexity", "val_bpb", "val_tokens"):
            assert isinstance(flat[f"{model}.{key}"], (int, float)), key
        assert flat[f"{model}.val_coverage"] == 1.0
    assert metrics["pretrain"]["lambada"]["set_a"] == metrics["pretrain"]["lambada"]["set_b"]
    assert metrics["pretrain"]["val_loss"] != metrics["sft"]["val_loss"]
    assert metrics["settings"]["prepend_bos"] is True and "lm-evaluation-harness" in metrics["settings"]["method"]
    samples = json.loads((project / "models/samples/eval.json").read_text())
    assert set(samples) == {"pretrain", "sft"} and set(samples["sft"]) == {"What is MPI?", "What is a warp?"}
    assert "seconds" not in metrics and "seconds" in json.loads((project / "metrics/timing/eval.json").read_text())
    outputs = ("data/stats/eval.json", "metrics/eval.json", "models/samples/eval.json")
    first = [(project / f).read_bytes() for f in outputs]
    run_eval()  # same inputs, same figures and samples, byte for byte (only metrics/timing/ differs)
    assert [(project / f).read_bytes() for f in outputs] == first


def test_malformed_lambada_file_stops_with_its_line(project, capsys):
    (project / "eval/set_b.jsonl").write_text('{"text": "fine passage"}\n{"text": oops}\n', encoding="utf-8")
    with pytest.raises(SystemExit) as exc:
        run_eval()
    assert exc.value.code == 2
    assert "set_b.jsonl:2: invalid JSON" in capsys.readouterr().err
    assert not (project / "metrics/eval.json").exists()


def test_two_files_with_one_name_are_refused(project, capsys):
    (project / "eval/other").mkdir()
    (project / "eval/other/set_a.jsonl").write_text('{"text": "a b"}\n', encoding="utf-8")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["eval"]["lambada_files"].append("eval/other/set_a.jsonl")
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    with pytest.raises(SystemExit):
        run_eval()
    assert "two files named 'set_a'" in capsys.readouterr().err


def test_a_missing_lambada_file_names_the_param(project, capsys):
    (project / "eval/set_b.jsonl").unlink()
    with pytest.raises(SystemExit) as exc:
        run_eval()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "set_b.jsonl: LAMBADA file not found (eval.lambada_files in params.yaml)" in err
    assert not (project / "metrics/eval.json").exists()


def suite_keys(metrics: dict, model: str) -> dict:
    return {k.split("@")[0]: k for k in metrics[model] if "@" in k}


def test_suites_are_keyed_by_content_hash(project):
    import hashlib
    run_eval()
    metrics = json.loads((project / "data/stats/eval.json").read_text())
    for name, kind in KINDS.items():
        sha = hashlib.sha256((project / f"eval/{name}.jsonl").read_bytes()).hexdigest()
        assert metrics["suites"][name] == {"kind": kind, "sha256": sha, "examples": len(SUITES[name])}
    keys = suite_keys(metrics, "sft")
    assert set(keys) == set(KINDS) and set(suite_keys(metrics, "pretrain")) == set(KINDS) - {"qa"}  # generation: SFT only
    assert set(metrics["sft"][keys["mc"]]) == {"acc", "acc_stderr", "acc_norm", "acc_norm_stderr"}
    assert set(metrics["sft"][keys["qa"]]) == {"exact_match", "exact_match_stderr", "f1", "f1_stderr"}
    assert metrics["pretrain"][keys["tx"]]["bpb"] > 0 and "accuracy" in metrics["pretrain"][keys["cl"]]
    assert "base" not in metrics  # no eval_base output: no base block
    # an edited suite is a new key: dvc metrics diff shows it as removed + added, never as a delta
    with open(project / "eval/mc.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"id": "c", "question": "Where does a kernel run?", "choices": ["GPU", "disk"], "answer": 0}) + "\n")
    run_eval()
    after = json.loads((project / "data/stats/eval.json").read_text())
    assert suite_keys(after, "sft")["mc"] != keys["mc"] and keys["mc"] not in after["sft"]
    assert after["sft"][keys["tx"]] == metrics["sft"][keys["tx"]]


def test_base_scores_are_merged(project):
    write_json(project / "models/eval_base.json", {"base": {"hpc_mc@0123abcd": {"acc": 0.5}}, "suites": {}})
    run_eval()
    assert json.loads((project / "data/stats/eval.json").read_text())["base"] == {"hpc_mc@0123abcd": {"acc": 0.5}}


def test_eval_base_on_scratch_writes_no_base_cheaply(project):
    from lib.core.stage import run_stage
    run_stage(importlib.import_module("stages.eval_base").main)
    assert json.loads((project / "models/eval_base.json").read_text()) == {"base": None, "init": "scratch"}
    run_eval()
    assert "base" not in json.loads((project / "data/stats/eval.json").read_text())


@pytest.mark.parametrize("line,expected", [
    ('{"id": "z", "question": "q?", "choices": ["x", "y"], "answer": 2}', "eval/mc.jsonl:3: answer index 2 is out of range"),
    ('{"id": "a", "question": "q?", "choices": ["x", "y"], "answer": 0}', "eval/mc.jsonl:3: duplicate id 'a'"),
    ('{"id": "c", "question": "q?", "choices": ["x", "y"], "answer": 0', "eval/mc.jsonl:3: invalid JSON"),
])
def test_a_bad_suite_line_stops_with_file_and_line(project, capsys, line, expected):
    with open(project / "eval/mc.jsonl", "a", encoding="utf-8") as f:
        f.write(line + "\n")
    with pytest.raises(SystemExit) as exc:
        run_eval()
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err
    assert not (project / "metrics/eval.json").exists()


def test_a_missing_suite_file_names_its_params_key(project, capsys):
    (project / "eval/tx.jsonl").unlink()
    with pytest.raises(SystemExit):
        run_eval()
    assert "eval.suites[2].path: eval/tx.jsonl: suite file not found" in capsys.readouterr().err


def set_eval_params(project, **values):
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["eval"].update(values)
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")


@pytest.mark.slow
def test_harness_tasks_are_scored_by_lm_eval_and_agree_with_ours(project):
    pytest.importorskip("lm_eval")
    from lib.eval.harness import write_suite_task
    write_suite_task(project / "tasks", "cl_task", "cloze", project / "eval/cl.jsonl")
    set_eval_params(project, harness_tasks=["cl_task"], harness_include=["tasks"])
    run_eval()
    metrics = json.loads((project / "data/stats/eval.json").read_text())
    for model in ("pretrain", "sft"):
        ours, theirs = metrics[model][suite_keys(metrics, model)["cl"]], metrics[model]["harness"]["cl_task"]
        assert theirs["acc"] == ours["accuracy"]
        assert theirs["perplexity"] == pytest.approx(ours["perplexity"], rel=1e-4)


@pytest.mark.slow
def test_an_unknown_harness_task_stops_with_one_line(project, capsys):
    pytest.importorskip("lm_eval")
    (project / "tasks").mkdir()
    set_eval_params(project, harness_tasks=["no_such_task"], harness_include=["tasks"])
    with pytest.raises(SystemExit):
        run_eval()
    err = capsys.readouterr().err
    assert "eval.harness_tasks: 'no_such_task' is neither a harness task nor defined in" in err
    assert "Traceback" not in err and not (project / "metrics/eval.json").exists()


def test_eval_base_scores_the_base_with_its_own_tokenizer(project):
    """pretrain.init names a base: eval_base scores it (a tiny random Llama saved by transformers)
    and eval shows it as "base"; its held-out bits per byte equal transformers' own computation."""
    transformers = pytest.importorskip("transformers")
    from tests.test_base_model import save_tiny_llama
    from lib.core.stage import run_stage
    save_tiny_llama(project / "models/base/tiny")
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["pretrain"] = {"init": "models/base/tiny"}
    (project / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    run_stage(importlib.import_module("stages.eval_base").main)
    base = json.loads((project / "models/eval_base.json").read_text())["base"]
    assert set(k.split("@")[0] for k in base if "@" in k) == {"mc", "cl", "tx"}  # no generation for a base
    assert set(base["lambada"]) == {"set_a", "set_b"} and base["init"] == "models/base/tiny"
    hf = transformers.AutoModelForCausalLM.from_pretrained(str(project / "models/base/tiny")).eval()
    hf_tok = transformers.AutoTokenizer.from_pretrained(str(project / "models/base/tiny"))
    nats, nbytes = 0.0, 0
    from lib.eval.suites.text import rolling_windows
    for record in SUITES["tx"]:  # the base's window is 128 tokens: the harness's rolling windows
        ids = hf_tok(record["text"], add_special_tokens=False)["input_ids"]
        for context, predicted in rolling_windows(ids, hf.config.bos_token_id, hf.config.max_position_embeddings):
            seq = (context + predicted)[:-1]
            with torch.no_grad():
                logprobs = torch.log_softmax(hf(torch.tensor([seq])).logits[0, -len(predicted):].float(), -1)
            nats -= float(logprobs.gather(1, torch.tensor(predicted)[:, None]).sum())
        nbytes += len(record["text"].encode())
    tx = next(v for k, v in base.items() if k.startswith("tx@"))
    assert tx["bpb"] == pytest.approx(nats / nbytes / math.log(2), abs=1e-4)
    run_eval()
    assert json.loads((project / "data/stats/eval.json").read_text())["base"] == base
