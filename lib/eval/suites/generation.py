"""Generation: a prompt and a short reference answer, for the SFT model. The prompt is asked
through the one chat template (``lib/tokenizer/chat.py``) and answered greedily, all prompts of a
batch in one ``generate_batch``. Metrics as SQuAD defines them (lm-evaluation-harness's
``squad_completion`` family): answers are normalised (lower case, punctuation and the articles
a/an/the dropped, whitespace collapsed); ``exact_match`` = normalised strings equal; ``f1`` =
token-overlap F1 between the normalised word lists."""
from __future__ import annotations

import re
import string
from collections import Counter

import numpy as np
import torch

from lib.core.errors import UserError
from lib.eval.suites.base import ScoreSettings, SuiteKind
from lib.eval.suites.multiple_choice import mean_stderr
from lib.tokenizer.chat import Message, decode_reply, prompt_ids, stop_ids
from lib.infer.generate import generate_batch
from lib.tokenizer import Tokenizer

_PUNCT = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize(text: str) -> str:
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCT)).split())


def token_f1(prediction: str, reference: str) -> float:
    pred, ref = normalize(prediction).split(), normalize(reference).split()
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def answers(model: torch.nn.Module, tokenizer: Tokenizer, prompts: list[str], settings: ScoreSettings) -> list[str]:
    """Greedy replies, ``batch_size`` prompts per generate_batch call."""
    window = model.cfg.max_seq_len
    ids = [prompt_ids(tokenizer, [Message("user", p)], window, settings.max_new_tokens)[-window:] for p in prompts]
    out = []
    for start in range(0, len(ids), settings.batch_size):
        new = generate_batch(model, ids[start:start + settings.batch_size], settings.max_new_tokens, stop_ids(tokenizer))
        out += [decode_reply(tokenizer, n) for n in new]
    return out


def score(model: torch.nn.Module, tokenizer: Tokenizer, records: list[dict], settings: ScoreSettings) -> dict:
    replies = answers(model, tokenizer, [r["prompt"] for r in records], settings)
    em = np.array([float(normalize(a) == normalize(r["answer"])) for a, r in zip(replies, records)])
    f1 = np.array([token_f1(a, r["answer"]) for a, r in zip(replies, records)])
    return {"exact_match": float(em.mean()), "exact_match_stderr": mean_stderr(em),
            "f1": float(f1.mean()), "f1_stderr": mean_stderr(f1)}


def _check(record: dict, where: str) -> None:
    for key in ("prompt", "answer"):
        if not record[key].strip():
            raise UserError(f"{where}: '{key}' is empty")


KIND = SuiteKind("generation", {"prompt": str, "answer": str}, score, _check, chat_only=True)
