"""Held-out domain text, scored as bits per byte (independent of the tokenizer).

As lm-evaluation-harness's ``loglikelihood_rolling`` (``lm_eval/utils.py``,
``get_rolling_token_windows`` with ``context_len=1`` and ``make_disjoint_window``): the text's
tokens are cut into windows of the model's ``max_seq_len`` predicted tokens; the first window is
conditioned on BOS, every later one on as many preceding tokens as fit in the window. Every token
is predicted exactly once. bits per byte = -(sum of log-likelihoods) / (UTF-8 bytes x ln 2), the
harness's ``bits_per_byte`` aggregation (a byte-weighted mean over documents).

One difference, on purpose: the harness's HF model encodes the text *with* BOS when
``add_bos_token`` is on, and so also scores the prediction of a BOS after the BOS prefix; the
text alone is scored here.
"""
from __future__ import annotations

import math

import torch

from lib.core.errors import UserError
from lib.eval.lambada import LambadaItem, score_items
from lib.eval.suites.base import ScoreSettings, SuiteKind
from lib.tokenizer import Tokenizer


def rolling_windows(tokens: list[int], prefix: int, window: int) -> list[tuple[list[int], list[int]]]:
    """(context, predicted) pairs covering ``tokens`` once, as the harness's rolling windows."""
    out, done = [], min(window, len(tokens))
    if tokens:
        out.append(([prefix], tokens[:done]))
    while done < len(tokens):
        end = min(len(tokens), done + window)
        out.append((tokens[max(0, end - window - 1):done], tokens[done:end]))
        done = end
    return out


def score(model: torch.nn.Module, tokenizer: Tokenizer, records: list[dict], settings: ScoreSettings) -> dict:
    items, total_bytes = [], 0
    for record in records:
        for context, predicted in rolling_windows(tokenizer.encode(record["text"]), tokenizer.bos_id,
                                                  model.cfg.max_seq_len):
            items.append(LambadaItem(context, predicted))
        total_bytes += len(record["text"].encode("utf-8"))
    logliks, _ = score_items(model, items, settings.device, settings.batch_size, settings.progress, "text")
    nats = -float(logliks.sum())
    tokens = sum(len(it.target) for it in items)
    return {"bpb": nats / (total_bytes * math.log(2)), "nll": nats / tokens, "tokens": tokens, "bytes": total_bytes}


def harness_task(name: str, path: str) -> dict:
    return {
        "task": name, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": path}},
        "output_type": "loglikelihood_rolling", "test_split": "test",
        "doc_to_text": "", "doc_to_target": "{{text}}",
        "metric_list": [{"metric": "bits_per_byte", "aggregation": "bits_per_byte", "higher_is_better": False}],
        "metadata": {"version": 1.0},
    }


def _check(record: dict, where: str) -> None:
    if not record["text"].strip():
        raise UserError(f"{where}: 'text' is empty")


KIND = SuiteKind("text", {"text": str}, score, _check, harness_task=harness_task)
