"""Cloze: a context and the final word or term that completes it, LAMBADA-style. Scored exactly as
``lib/eval/lambada.py`` scores LAMBADA (the harness's ``lambada_openai``): ``accuracy`` = the
target is the greedy continuation token by token, ``perplexity`` = exp(-mean per-passage
log-likelihood). The record gives the split itself: ``target`` carries its leading space."""
from __future__ import annotations

import torch

from lib.core.errors import UserError
from lib.eval.lambada import LambadaItem, encode_pair, lambada_metrics, score_items
from lib.eval.suites.base import ScoreSettings, SuiteKind
from lib.tokenizer import Tokenizer

KEEP = ("accuracy", "accuracy_stderr", "perplexity", "mean_token_nll", "truncated", "boundary_mismatches")


def items_of(tokenizer: Tokenizer, records: list[dict], prepend_bos: bool) -> list[LambadaItem]:
    out = []
    for r in records:
        context, target, aligned = encode_pair(tokenizer, r["context"], r["target"], prepend_bos)
        if not target:
            raise UserError(f"cloze record {r['id']!r}: the target produced no tokens")
        out.append(LambadaItem(context, target, aligned=aligned))
    return out


def score(model: torch.nn.Module, tokenizer: Tokenizer, records: list[dict], settings: ScoreSettings) -> dict:
    items = items_of(tokenizer, records, settings.prepend_bos)
    logliks, greedy = score_items(model, items, settings.device, settings.batch_size, settings.progress, "cloze")
    full = lambada_metrics(items, logliks, greedy, model.cfg.max_seq_len)
    return {k: full[k] for k in KEEP}


def harness_task(name: str, path: str) -> dict:
    return {
        "task": name, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": path}},
        "output_type": "loglikelihood", "test_split": "test",
        "doc_to_text": "{{context}}", "doc_to_target": "{{target}}",
        "metric_list": [{"metric": "perplexity", "aggregation": "perplexity", "higher_is_better": False},
                        {"metric": "acc", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0},
    }


def _check(record: dict, where: str) -> None:
    if not record["context"].strip():
        raise UserError(f"{where}: 'context' is empty")
    if not record["target"].strip():
        raise UserError(f"{where}: 'target' is empty; it is the word or term that ends the passage")


KIND = SuiteKind("cloze", {"context": str, "target": str}, score, _check, harness_task=harness_task)
