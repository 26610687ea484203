"""eval: every fixed suite of eval.suites (lib/eval/suites/), LAMBADA (computed as
lm-evaluation-harness's lambada_openai), val loss, perplexity and bits per byte for the pretrained
and SFT models, merged with the base model's scores (the eval_base stage, cached per base); sample
answers to fixed prompts. All figures in data/stats/eval.json:
{suites: {name: {kind, sha256, examples}}, base|pretrain|sft: {"<name>@<sha8>": {...}, lambada: {file:
{...}}, val_*: ...}, settings: {...}}; the headline ones (lib/core/figures.py) in metrics/eval.json."""
import time
from dataclasses import replace
from pathlib import Path

from lib.attention import LearnedAttention, attention_for_model, wrap_for_external
from lib.model.checkpoint import load_model
from lib.core.errors import UserError
from lib.core.figures import write_figures
from lib.core.stage import run_stage, summary
from lib.eval.params import EvalParams
from lib.eval.validation import predicted_tokens, val_metrics, val_nll
from lib.infer.replies import ask, replies
from lib.core.io import read_json, write_json
from lib.eval.harness import check_tasks, score_harness
from lib.eval.lambada import HARNESS_TASK, evaluate_lambada, read_lambada
from lib.eval.suites.run import identities, read_suites, score_suites, settings_of
from lib.core.params import load_section, load_seed
from lib.core.runtime import setup_torch
from lib.data.shards import META_FILE, open_split
from lib.tokenizer import Tokenizer

MODELS = {"pretrain": Path("models/pretrain"), "sft": Path("models/sft")}
SHARDS = Path("data/shards")
SAMPLES = Path("models/samples/eval.json")  # prose stays out of metrics: a cached output
BASE_SCORES = Path("models/eval_base.json")  # the eval_base stage's output


def load_lambada(params: EvalParams, tokenizer: Tokenizer) -> dict:
    sets = {}
    for f in params.lambada_files:
        name = Path(f).stem
        if name in sets:
            raise UserError(f"eval.lambada_files: two files named '{name}'; metrics are keyed by file name")
        if not Path(f).is_file():
            raise UserError(f"{f}: LAMBADA file not found (eval.lambada_files in params.yaml); fix the path "
                            f"or remove the entry")
        sets[name] = read_lambada(f, tokenizer, params.prepend_bos)
    return sets


def main() -> None:
    started = time.perf_counter()
    params, seed = load_section("eval", EvalParams), load_seed()
    device = setup_torch(params.device, params.threads, seed)
    tokenizer = Tokenizer.load("models/tokenizer")
    val_shards = open_split(SHARDS / "val", tokenizer.sha256)
    val_bytes = read_json(SHARDS / META_FILE)["splits"]["val"]["text_bytes"]
    prompts_path = Path(params.prompts)
    if not prompts_path.exists():
        raise UserError(f"{prompts_path}: prompts file not found (eval.prompts in params.yaml)")
    prompts = [p for p in prompts_path.read_text(encoding="utf-8").splitlines() if p.strip()]
    lambada = load_lambada(params, tokenizer)
    suites = read_suites(params)
    harness = check_tasks(params.harness_tasks, params.harness_include) if params.harness_tasks else None
    base = read_json(BASE_SCORES) if BASE_SCORES.exists() else {}

    # metrics hold numbers and labels; the method's description is lib/eval/lambada.py's HARNESS
    metrics = {"settings": {"prepend_bos": params.prepend_bos, "method": HARNESS_TASK},
               "suites": identities(suites), **({"base": base["base"]} if base.get("base") else {})}
    samples = {}
    for name, path in MODELS.items():
        model = load_model(path, device, tokenizer.sha256)
        attention = wrap_for_external(model, attention_for_model(path), tokenizer)  # as it was trained
        # packed multiple-choice rows need the model's own attention masks; external attention has none
        settings = replace(settings_of(params, device), shared_prefix=isinstance(attention, LearnedAttention))
        nats, tokens = val_nll(model, val_shards, device, params.batch_size, params.val_batches, desc=f"{name} val")
        val = val_metrics(nats, tokens, predicted_tokens(val_shards), val_bytes)
        metrics[name] = {
            **{k: round(v, 4) for k, v in val.items()},
            "context_window": model.cfg.max_seq_len,
            "lambada": {f: {k: round(v, 4) for k, v in evaluate_lambada(
                model, items, device, params.batch_size, desc=f"{name} {f}").items()}
                for f, items in lambada.items()},
            **score_suites(model, tokenizer, suites, settings, chat=name == "sft"),
        }
        if harness is not None:  # through lm-evaluation-harness's own code, on the HF export
            metrics[name]["harness"] = score_harness(model, tokenizer, params.harness_tasks, harness,
                                                     params.prepend_bos, params.batch_size, str(device))
        samples[name] = replies(model, tokenizer, ask(prompts), params.max_new_tokens)
    metrics["seconds"] = round(time.perf_counter() - started, 1)
    top = write_figures("eval", metrics)
    write_json(SAMPLES, samples)
    summary("eval", "; ".join(f"{name} val bpb {top[name]['val_bpb']:.4f}" for name in MODELS),
            f"metrics/eval.json, all figures in data/stats/eval.json, samples in {SAMPLES}", metrics["seconds"])

if __name__ == "__main__":
    run_stage(main)
