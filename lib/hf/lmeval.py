"""lm-evaluation-harness over an exported model, offline: a ``lambada_openai``-equivalent task
definition over a local jsonl file (``lib/hf/tasks/lambada_hpc.yaml`` is the shipped one, for the
sample passages) and a helper that runs the harness's Python API on it.

lm-eval is a dev dependency: this module imports it only inside ``run_lambada``.
"""
from __future__ import annotations

import os
from pathlib import Path

import yaml

from lib.core.errors import UserError

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def lambada_task(name: str, jsonl: str | os.PathLike) -> dict:
    """The task definition: lambada_openai's prompt, target and metrics over ``jsonl``."""
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


def write_lambada_task(task_dir: str | os.PathLike, name: str, jsonl: str | os.PathLike) -> Path:
    """Write ``<task_dir>/<name>.yaml`` for ``jsonl`` (made absolute, so any working directory works)."""
    path = Path(task_dir) / f"{name}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(lambada_task(name, Path(jsonl).resolve()), sort_keys=False), encoding="utf-8")
    return path


def run_lambada(hf_dir: str | os.PathLike, task_dir: str | os.PathLike, task: str, add_bos_token: bool = True,
                batch_size: int = 16) -> dict:
    """Run the harness on CPU, hub access off; returns {"accuracy", "perplexity", "passages"}."""
    os.environ.update(OFFLINE_ENV)
    try:
        import lm_eval
        from lm_eval.tasks import TaskManager
    except ImportError:
        raise UserError("lm-eval is not installed; it is a dev dependency (`uv sync --dev`)") from None

    results = lm_eval.simple_evaluate(
        model="hf",
        model_args={"pretrained": str(hf_dir), "add_bos_token": add_bos_token, "dtype": "float32",
                    # an explicit device_map makes the harness pass none to transformers (which would
                    # need accelerate for one); the model is then moved to `device`
                    "device_map": "cpu"},
        tasks=[task],
        # only our task directory: indexing the harness's thousands of built-in tasks takes seconds
        task_manager=TaskManager(include_path=str(task_dir), include_defaults=False),
        batch_size=batch_size,
        device="cpu",
        log_samples=False,
        bootstrap_iters=0,  # no standard errors: the figures themselves are compared
    )
    r = results["results"][task]
    return {"accuracy": r["acc,none"], "perplexity": r["perplexity,none"],
            "passages": results["n-samples"][task]["effective"]}
