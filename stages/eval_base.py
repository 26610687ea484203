"""eval_base: the base model that pretrain.init names, scored on every suite and on LAMBADA exactly
as the eval stage scores our models, with the base's own tokenizer. Its own stage so that DVC
computes it once per base (deps: models/base, the suites, the eval code) and the eval stage only
merges it into metrics/eval.json under "base". With pretrain.init: scratch it writes
{"base": null} without loading anything."""
import time
from pathlib import Path

from lib.core.io import write_json
from lib.core.params import load_section, load_seed, read_params
from lib.core.runtime import setup_torch
from lib.core.stage import run_stage, summary
from lib.eval.harness import check_tasks, run_tasks
from lib.eval.lambada import evaluate_lambada, read_lambada
from lib.eval.params import EvalParams
from lib.eval.suites.run import identities, read_suites, score_suites, settings_of

OUT = Path("models/eval_base.json")


def load_base(init: str, device):
    """(model, tokenizer) of the base exactly as published: its own weights and vocabulary (no rows
    added, so no probability goes to tokens the base never had) and its tokenizer, plus our chat
    markers only because our Tokenizer needs them (text never encodes to them)."""
    from lib.hf.base import load_base_tokenizer, resolve_init
    from lib.hf.import_ import build_model, load_base_weights
    from lib.tokenizer import Tokenizer
    from lib.tokenizer.build import extend_base
    source = resolve_init(init)
    tokenizer = Tokenizer(extend_base(*load_base_tokenizer(source), [])[0])
    cfg, weights, _ = load_base_weights(source)
    model = build_model(cfg, weights, str(source.path / (source.gguf or "config.json")))
    return model.to(device).eval(), tokenizer


def main() -> None:
    started = time.perf_counter()
    params, seed = load_section("eval", EvalParams), load_seed()
    init = str((read_params().get("pretrain") or {}).get("init", "scratch"))
    suites = read_suites(params)
    if init == "scratch":
        write_json(OUT, {"base": None, "init": init})
        summary("eval_base", "pretrain.init is scratch, no base to score", str(OUT), time.perf_counter() - started)
        return
    manager = check_tasks(params.harness_tasks, params.harness_include) if params.harness_tasks else None
    device = setup_torch(params.device, params.threads, seed)
    model, tokenizer = load_base(init, device)
    scores = {"init": init, "context_window": model.cfg.max_seq_len,
              **score_suites(model, tokenizer, suites, settings_of(params, device), chat=False),
              "lambada": {Path(f).stem: {k: round(v, 4) for k, v in evaluate_lambada(
                  model, read_lambada(f, tokenizer, params.prepend_bos), device, params.batch_size,
                  desc=f"base {Path(f).stem}").items()} for f in params.lambada_files}}
    if manager is not None:  # the general benchmarks, through the harness, on the base's own files
        from lib.hf.base import resolve_init
        source = resolve_init(init)
        scores["harness"] = run_tasks(source.path, params.harness_tasks, manager, params.prepend_bos,
                                      params.batch_size, str(device), gguf_file=source.gguf)
        scores["harness"].pop("_raw")
    write_json(OUT, {"base": scores, "suites": identities(suites)})
    summary("eval_base", f"scored {init} on {len(suites)} suites", str(OUT), time.perf_counter() - started)


if __name__ == "__main__":
    run_stage(main)
