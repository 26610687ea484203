"""lm-evaluation-harness, run by its own code on our models: task YAMLs for the shipped suites
(the same prompt and metrics our scorers use, over local files) and the tasks ``eval.harness_tasks``
names, scored on the Hugging Face export of a model (lib/hf/export.py) with the harness's ``hf``
model, hub access off. lm-eval is a dev dependency, imported only when a task is run.

A task whose data is not on disk (a built-in task whose dataset is not in the Hugging Face datasets
cache) stops with one line that says how to provide it offline.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import torch
import yaml

from lib.core.errors import UserError
from lib.eval.suites import KINDS
from lib.hf.export import export_model
from lib.model.checkpoint import save_model
from lib.tokenizer import Tokenizer


OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def lambada_task(name: str, jsonl: str | os.PathLike) -> dict:
    """lambada_openai's prompt, target and metrics over a local LAMBADA ``jsonl`` ({"text"} per line);
    ``lib/hf/tasks/lambada_hpc.yaml`` is the shipped one, for the sample passages."""
    return {
        "task": name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(jsonl)}},
        "output_type": "loglikelihood",
        "test_split": "test",
        "doc_to_text": "{{text.split(' ')[:-1]|join(' ')}}",
        "doc_to_target": "{{' '+text.split(' ')[-1]}}",
        "metric_list": [
            {"metric": "perplexity", "aggregation": "perplexity", "higher_is_better": False},
            {"metric": "acc", "aggregation": "mean", "higher_is_better": True},
        ],
        "metadata": {"version": 1.0},
    }


def suite_task(name: str, kind: str, jsonl: str | os.PathLike) -> dict:
    """The harness task that scores suite ``jsonl`` of ``kind`` as our scorer does."""
    make = KINDS[kind].harness_task
    if make is None:
        raise UserError(f"suite {name}: kind {kind} has no harness task definition")
    return make(name, str(jsonl))


def write_task(task_dir: str | os.PathLike, name: str, definition: dict) -> Path:
    """``<task_dir>/<name>.yaml`` holding a task ``definition``."""
    path = Path(task_dir) / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(definition, sort_keys=False), encoding="utf-8")
    return path


def write_suite_task(task_dir: str | os.PathLike, name: str, kind: str, jsonl: str | os.PathLike) -> Path:
    """The task for suite ``jsonl`` (made absolute, so any working directory works)."""
    return write_task(task_dir, name, suite_task(name, kind, Path(jsonl).resolve()))


def local_task_names(include: list[str]) -> set[str]:
    """Task names defined by the YAML files under ``include`` (so the harness's own thousands of
    task files, which take most of a minute to index, are read only when a task needs them)."""
    names = set()
    for folder in include:
        for path in sorted(Path(folder).rglob("*.yaml")):
            try:
                doc = yaml.safe_load(path.read_text(encoding="utf-8"))
            except yaml.YAMLError:
                continue  # harness YAMLs may use !function tags; such a file is not one of ours
            if isinstance(doc, dict) and isinstance(doc.get("task"), str):
                names.add(doc["task"])
    return names


def _lm_eval():
    os.environ.update(OFFLINE_ENV)
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager, get_task_dict
    except ImportError:
        raise UserError("eval.harness_tasks needs lm-eval, a dev dependency: `uv sync --dev`") from None
    return lm_eval, TaskManager, get_task_dict


def check_tasks(tasks: list[str], include: list[str]):
    """The harness's TaskManager with every task of ``tasks`` loadable offline, or one UserError line."""
    _, TaskManager, get_task_dict = _lm_eval()
    missing_dirs = [d for d in include if not Path(d).is_dir()]
    if missing_dirs:
        raise UserError(f"eval.harness_include: {missing_dirs[0]}: no such folder")
    defaults = not set(tasks) <= local_task_names(include)
    manager = TaskManager(include_path=list(include) or None, include_defaults=defaults)
    for task in tasks:
        try:
            get_task_dict([task], manager)
        except KeyError:
            raise UserError(f"eval.harness_tasks: {task!r} is neither a harness task nor defined in "
                            f"eval.harness_include ({', '.join(include)}); check the name with `lm_eval ls tasks`") from None
        except ConnectionError as err:
            raise UserError(f"eval.harness_tasks: {task!r} needs data that is not on this machine ({err}); "
                            f"fill the Hugging Face datasets cache once with network access (run lm_eval on the "
                            f"task with HF_DATASETS_OFFLINE=0) or write a task YAML over local files into "
                            f"{include[0] if include else 'a folder of eval.harness_include'}") from None
    return manager


def run_tasks(hf_dir: str | os.PathLike, tasks: list[str], manager, add_bos_token: bool = True,
              batch_size: int = 16, device: str = "cpu", log_samples: bool = False,
              bootstrap_iters: int = 1000, gguf_file: str | None = None) -> dict:
    """{task: {metric: value}} with the harness's metric names (``acc``, ``acc_stderr``, ...), and
    the raw result under ``"_raw"`` (per-sample responses when ``log_samples``). Means get the
    harness's analytic ``mean_stderr``; perplexity a bootstrap of ``bootstrap_iters`` resamples (0: no stderr)."""
    lm_eval, _, _ = _lm_eval()
    results = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": str(hf_dir), "add_bos_token": add_bos_token, "dtype": "float32",
                    "device_map": device, **({"gguf_file": gguf_file} if gguf_file else {})},
        tasks=list(tasks), task_manager=manager, batch_size=batch_size, device=device,
        log_samples=log_samples, bootstrap_iters=bootstrap_iters)
    out = {task: harness_metrics(results["results"][task]) for task in tasks}
    out["_raw"] = results
    return out


def harness_metrics(result: dict) -> dict:
    """``{"acc,none": 0.5, "acc_stderr,none": 0.1, "alias": ...}`` -> ``{"acc": 0.5, "acc_stderr": 0.1}``."""
    out = {}
    for key, value in result.items():
        metric, _, filt = key.partition(",")
        if filt and isinstance(value, (int, float)):
            out[metric if filt == "none" else f"{metric}_{filt}"] = round(float(value), 4)
    return out


def score_harness(model: torch.nn.Module, tokenizer: Tokenizer, tasks: list[str], manager,
                  add_bos_token: bool, batch_size: int, device: str) -> dict:
    """Export ``model`` with ``tokenizer`` to a temporary Hugging Face directory and run ``tasks``."""
    with tempfile.TemporaryDirectory(prefix="hpc-lm-harness-") as tmp:
        tmp = Path(tmp)
        save_model(tmp / "ours", model, tokenizer.sha256)
        (tmp / "tok").mkdir()
        (tmp / "tok" / tokenizer.file_name).write_bytes(tokenizer.model_bytes)
        export_model(tmp / "ours", tmp / "tok", tmp / "hf")
        scores = run_tasks(tmp / "hf", tasks, manager, add_bos_token, batch_size, device)
    scores.pop("_raw")
    return scores
