"""Multiple choice: a question, its options and the index of the right one, scored by the
log-likelihood of each option after the question, as lm-evaluation-harness's ``multiple_choice``
output type (``lm_eval/api/task.py``, ``construct_requests`` and ``process_results``):

- context ``"Question: {question}\nAnswer:"``, continuation ``" " + option`` (target_delimiter);
- ``acc``: the option of highest summed log-likelihood is the answer;
- ``acc_norm``: the same after dividing each log-likelihood by the option's length in characters
  (the harness's ``completion_len = len(choice)``; equal to its byte length for ASCII options);
- ``*_stderr``: the harness's ``mean_stderr``, sample standard deviation / sqrt(n).

The question is run once for all its options: packed rows with a mask that keeps the options
apart (``shared_prefix.py``); a question too long for that falls back to one padded batch that
holds all its options (``score_items`` groups).
"""
from __future__ import annotations

import math

import numpy as np
import torch

from lib.core.errors import UserError
from lib.eval.lambada import LambadaItem, encode_pair, score_items
from lib.eval.suites.base import ScoreSettings, SuiteKind
from lib.eval.suites.shared_prefix import pack, score_packed
from lib.tokenizer import Tokenizer

PROMPT = "Question: {question}\nAnswer:"
DELIMITER = " "


def mean_stderr(values: np.ndarray) -> float:
    """lm-evaluation-harness's ``mean_stderr``: sample standard deviation / sqrt(n)."""
    return float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else 0.0


def option_items(tokenizer: Tokenizer, records: list[dict], prepend_bos: bool) -> tuple[list[LambadaItem], list[int]]:
    items, groups = [], []
    for q, r in enumerate(records):
        context = PROMPT.format(question=r["question"])
        for choice in r["choices"]:
            ctx, cont, aligned = encode_pair(tokenizer, context, DELIMITER + choice, prepend_bos)
            items.append(LambadaItem(ctx, cont, aligned=aligned))
            groups.append(q)
    return items, groups


def choice_metrics(lls: np.ndarray, lengths: np.ndarray, answers: np.ndarray) -> dict:
    """``lls`` and ``lengths``: (questions, max options), a missing option at -inf / 1."""
    hit = (lls.argmax(1) == answers).astype(np.float64)
    hit_norm = ((lls / lengths).argmax(1) == answers).astype(np.float64)
    return {"acc": float(hit.mean()), "acc_stderr": mean_stderr(hit),
            "acc_norm": float(hit_norm.mean()), "acc_norm_stderr": mean_stderr(hit_norm)}


def option_logliks(model: torch.nn.Module, items: list[LambadaItem], groups: list[int],
                   settings: ScoreSettings) -> np.ndarray:
    """Each option's summed log-likelihood after its question (``items`` grouped by question)."""
    model.eval()
    cap = model.cfg.max_seq_len
    # an option longer than the window: its last `cap` tokens are scored after the rest (a small
    # model's window only; the harness has no defined result there)
    items = [it if len(it.target) <= cap else LambadaItem(it.context + it.target[:-cap], it.target[-cap:])
             for it in items]
    logliks, greedy = np.zeros(len(items)), np.zeros(len(items), dtype=bool)
    starts = [i for i in range(len(items)) if i == 0 or groups[i] != groups[i - 1]] + [len(items)]
    packs, rest = [], []
    for a, b in zip(starts, starts[1:]):
        shared = settings.shared_prefix and all(it.context == items[a].context for it in items[a:b])
        packed = pack(items[a].context, [it.target for it in items[a:b]], a, cap) if shared else None
        (packs.append(packed) if packed else rest.extend(range(a, b)))
    packs.sort(key=lambda p: -len(p.tokens))  # less padding
    for i in range(0, len(packs), settings.batch_size):
        score_packed(model, packs[i:i + settings.batch_size], len(items), torch.device(settings.device), logliks, greedy)
    if rest:
        logliks[rest], _ = score_items(model, [items[i] for i in rest], settings.device, settings.batch_size,
                                       settings.progress, "multiple choice", groups=[groups[i] for i in rest])
    return logliks


def score(model: torch.nn.Module, tokenizer: Tokenizer, records: list[dict], settings: ScoreSettings) -> dict:
    items, groups = option_items(tokenizer, records, settings.prepend_bos)
    logliks = option_logliks(model, items, groups, settings)
    width = max(len(r["choices"]) for r in records)
    lls = np.full((len(records), width), -np.inf)
    lengths = np.ones((len(records), width))
    rows = np.asarray(groups)
    cols = np.concatenate([np.arange(len(r["choices"])) for r in records])
    lls[rows, cols] = logliks
    lengths[rows, cols] = [float(len(c)) for r in records for c in r["choices"]]
    return choice_metrics(lls, lengths, np.array([r["answer"] for r in records]))


def harness_task(name: str, path: str) -> dict:
    return {
        "task": name, "dataset_path": "json", "dataset_kwargs": {"data_files": {"test": path}},
        "output_type": "multiple_choice", "test_split": "test",
        "doc_to_text": "Question: {{question}}\nAnswer:", "doc_to_choice": "choices",
        "doc_to_target": "answer", "target_delimiter": DELIMITER,
        "metric_list": [{"metric": "acc", "aggregation": "mean", "higher_is_better": True},
                        {"metric": "acc_norm", "aggregation": "mean", "higher_is_better": True}],
        "metadata": {"version": 1.0},
    }


def _check(record: dict, where: str) -> None:
    choices, answer = record["choices"], record["answer"]
    if len(choices) < 2 or not all(isinstance(c, str) and c.strip() for c in choices):
        raise UserError(f"{where}: 'choices' must be a list of at least 2 non-empty strings")
    if len(set(choices)) != len(choices):
        raise UserError(f"{where}: 'choices' has the same option twice")
    if isinstance(answer, bool) or not 0 <= answer < len(choices):
        raise UserError(f"{where}: answer index {answer} is out of range for {len(choices)} choices "
                        f"(0 to {len(choices) - 1})")


KIND = SuiteKind("multiple_choice", {"question": str, "choices": list, "answer": int}, score, _check,
                 harness_task=harness_task)
