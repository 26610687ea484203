"""Benchmark: the shipped eval suites scored by our batched scorers (lib/eval/suites/) against
lm-evaluation-harness scoring the same suites, through the same task YAMLs, on the Hugging Face
export of the same model, in the same run. Prints JSON: examples/s for each, the ratio, and the
seconds the default suites add to the eval stage per model (the stage's ``<= 20 s`` budget).

The model is models/pretrain when it exists (``--model``), else a random model of the default
pretrain shape (scoring time does not depend on the weights). The harness's model object is built
before its clock starts (loading is not counted against it); both sides get a warm-up pass.

    uv run python -m bench.bench_eval_suites [--model models/pretrain] [--threads 2] [--batch-size 16]
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from lib.core.params import load_section
from lib.eval.harness import OFFLINE_ENV, suite_task
from lib.eval.params import EvalParams
from lib.eval.suites import KINDS
from lib.eval.suites.run import read_suites, settings_of
from lib.hf.export import export_model
from lib.model.checkpoint import load_model, save_model
from lib.model.config import ModelConfig
from lib.model.gpt import GPT
from lib.tokenizer import Tokenizer


def model_of(path: Path, tokenizer: Tokenizer) -> tuple[GPT, str]:
    if (path / "model.safetensors").exists():
        return load_model(path, "cpu", tokenizer.sha256), str(path)
    torch.manual_seed(0)
    cfg = ModelConfig(n_layer=4, n_head=4, n_kv_head=4, d_model=128, d_ff=352, max_seq_len=256,
                      vocab_size=tokenizer.vocab_size, dropout=0.0, qk_norm=True)
    return GPT(cfg).eval(), "random, default pretrain shape"


def figures(examples: int, wall: float, cpu: float) -> dict:
    """Wall and CPU seconds: on a shared machine CPU time is the steadier of the two."""
    return {"examples": examples, "seconds": round(wall, 2), "cpu_seconds": round(cpu, 2),
            "examples_per_s": round(examples / wall, 1), "examples_per_cpu_s": round(examples / cpu, 1)}


def time_ours(model, tokenizer, suites, settings) -> dict:
    out = {}
    for suite in suites:
        KINDS[suite.kind].score(model, tokenizer, suite.records[:4], settings)  # warm-up
        t0, c0 = time.perf_counter(), time.process_time()
        KINDS[suite.kind].score(model, tokenizer, suite.records, settings)
        out[suite.name] = figures(len(suite.records), time.perf_counter() - t0, time.process_time() - c0)
    return out


def time_harness(hf_dir: Path, task_dir: Path, suites, batch_size: int, threads: int) -> dict:
    os.environ.update(OFFLINE_ENV)
    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager
    lm = HFLM(pretrained=str(hf_dir), add_bos_token=True, dtype="float32", device="cpu", batch_size=batch_size)
    torch.set_num_threads(threads)  # transformers may have changed it
    manager = TaskManager(include_path=str(task_dir), include_defaults=False)
    out = {}
    for suite in suites:
        kw = dict(model=lm, task_manager=manager, log_samples=False, bootstrap_iters=0)
        lm_eval.simple_evaluate(tasks=[f"{suite.name}_warm"], **kw)  # warm-up on 4 examples
        t0, c0 = time.perf_counter(), time.process_time()
        lm_eval.simple_evaluate(tasks=[suite.name], **kw)
        out[suite.name] = figures(len(suite.records), time.perf_counter() - t0, time.process_time() - c0)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="models/pretrain")
    ap.add_argument("--tokenizer", default="models/tokenizer")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    params = load_section("eval", EvalParams)
    tokenizer = Tokenizer.load(args.tokenizer)
    model, described = model_of(Path(args.model), tokenizer)
    suites = [s for s in read_suites(params) if KINDS[s.kind].harness_task is not None]
    settings = settings_of(params, "cpu", progress=False)
    settings = type(settings)(settings.prepend_bos, args.batch_size, "cpu", settings.max_new_tokens, False)
    ours = time_ours(model, tokenizer, suites, settings)
    with tempfile.TemporaryDirectory(prefix="bench-eval-") as tmp:
        tmp = Path(tmp)
        save_model(tmp / "ours", model, tokenizer.sha256)
        export_model(tmp / "ours", args.tokenizer, tmp / "hf")
        import yaml
        for suite in suites:
            for name, records in [(suite.name, suite.records), (f"{suite.name}_warm", suite.records[:4])]:
                data = tmp / f"{name}.jsonl"
                data.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
                (tmp / "tasks").mkdir(exist_ok=True)
                (tmp / "tasks" / f"{name}.yaml").write_text(yaml.safe_dump(suite_task(name, suite.kind, data)))
        harness = time_harness(tmp / "hf", tmp / "tasks", suites, args.batch_size, args.threads)
    total = {side: {k: sum(v[k] for v in figs.values()) for k in ("seconds", "cpu_seconds")}
             for side, figs in (("ours", ours), ("lm_eval", harness))}
    print(json.dumps({
        "model": described, "threads": args.threads, "batch_size": args.batch_size,
        "load_average_1min": round(os.getloadavg()[0], 1),
        "ours": ours, "lm_eval": harness,
        "speedup_per_suite": {s: round(harness[s]["seconds"] / ours[s]["seconds"], 2) for s in ours},
        "speedup_all": round(total["lm_eval"]["seconds"] / total["ours"]["seconds"], 2),
        "speedup_all_cpu": round(total["lm_eval"]["cpu_seconds"] / total["ours"]["cpu_seconds"], 2),
        "ours_seconds_per_model": round(total["ours"]["seconds"], 2),
        "ours_cpu_seconds_per_model": round(total["ours"]["cpu_seconds"], 2),
    }, indent=2))


if __name__ == "__main__":
    main()
