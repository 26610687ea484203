"""Evaluation: validation loss and bits per byte, the unigram baseline, LAMBADA last-word
accuracy and perplexity computed the way the standard harness (lm-evaluation-harness) does."""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from lib.errors import UserError
from lib.io import iter_jsonl
from lib.model import GPT
from lib.params import check
from lib.runtime import autocast
from lib.tokenizer import Tokenizer


@dataclass
class EvalParams:
    lambada_files: list[str] = field(default_factory=lambda: ["data/sample/eval/lambada_hpc.jsonl"])
    prepend_bos: bool = True
    batch_size: int = 16
    val_batches: int = 16
    prompts: str = "data/sample/eval/prompts.txt"
    max_new_tokens: int = 48
    device: str = "cpu"
    threads: int = 2

    def __post_init__(self):
        check(self.batch_size >= 1 and self.val_batches >= 1, "batch_size", "batch sizes must be >= 1")


def unigram_entropy(tokens: np.ndarray) -> float:
    """Entropy (nats/token) of the empirical token distribution: the loss of the best model that
    ignores context, measured on the very tokens it is scored on (a strict baseline)."""
    counts = np.bincount(np.asarray(tokens, dtype=np.int64))
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def bits_per_byte(loss_nats_per_token: float, tokens: int, text_bytes: int) -> float:
    """Tokenizer-independent loss: total nats over the split's tokens, in bits, per UTF-8 byte."""
    return loss_nats_per_token * tokens / (text_bytes * math.log(2))


@dataclass
class LambadaItem:
    context: list[int]
    target: list[int]


def split_passage(text: str) -> tuple[str, str]:
    """The harness's split: target is the last space-separated word with its leading space."""
    context, _, word = text.rpartition(" ")
    return context, " " + word


def lambada_items(path: Path, tokenizer: Tokenizer, prepend_bos: bool) -> list[LambadaItem]:
    """Tokenise passages: encode context+target as one string and take as target tokens what
    follows the encoded context -- never encode the target alone (SentencePiece would add a
    spurious word-boundary piece)."""
    items = []
    for lineno, record in iter_jsonl(path):
        text = record.get("text")
        if not isinstance(text, str) or " " not in text.strip():
            raise UserError(f"{path}:{lineno}: expected {{\"text\": \"...\"}} with at least two words")
        context, target = split_passage(text)
        ctx_ids = tokenizer.encode(context)
        whole = tokenizer.encode(context + target)
        n = len(ctx_ids)
        if whole[:n] != ctx_ids:  # the boundary merged across context and target: back off
            n = _common_prefix(ctx_ids, whole)
            ctx_ids = whole[:n]
        if n == len(whole):
            raise UserError(f"{path}:{lineno}: target word produced no tokens")
        bos = [tokenizer.bos_id] if prepend_bos else []
        items.append(LambadaItem(context=bos + whole[:n], target=whole[n:]))
    if not items:
        raise UserError(f"{path}: no passages")
    return items


def _common_prefix(a: list[int], b: list[int]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


@torch.no_grad()
def lambada_scores(model: GPT, items: list[LambadaItem], device: torch.device, batch_size: int) -> dict:
    """Per passage: log-likelihood of the target tokens and whether each is the greedy argmax.
    Batched with right padding; contexts longer than the model's window are left-truncated."""
    model.eval()
    max_len = model.cfg.max_seq_len
    logliks, correct, n_tokens = [], [], 0
    for start in range(0, len(items), batch_size):
        chunk = items[start:start + batch_size]
        seqs = [(it.context + it.target)[-(max_len + 1):] for it in chunk]
        width = max(len(s) for s in seqs) - 1
        inputs = torch.zeros(len(seqs), width, dtype=torch.long)
        for i, s in enumerate(seqs):
            inputs[i, :len(s) - 1] = torch.tensor(s[:-1])
        with autocast(device):
            logits, _ = model(inputs.to(device))
        logprobs = F.log_softmax(logits.float(), dim=-1).cpu()
        for i, (item, s) in enumerate(zip(chunk, seqs)):
            t = len(item.target)
            positions = torch.arange(len(s) - 1 - t, len(s) - 1)
            target = torch.tensor(s[-t:])
            lp = logprobs[i, positions]
            logliks.append(float(lp.gather(1, target[:, None]).sum()))
            correct.append(bool((lp.argmax(-1) == target).all()))
            n_tokens += t
    return {
        "accuracy": sum(correct) / len(correct),
        "perplexity": math.exp(-sum(logliks) / len(logliks)),
        "mean_token_nll": -sum(logliks) / n_tokens,
        "passages": len(items),
    }
