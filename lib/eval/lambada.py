"""LAMBADA last-word prediction, computed exactly as EleutherAI's lm-evaluation-harness computes
its ``lambada_openai`` task, so the numbers can be set next to published ones.

The harness, step by step (file names are from lm-evaluation-harness 0.4.x):

- ``lm_eval/tasks/lambada/lambada_openai.yaml``: context = ``text.split(' ')[:-1]|join(' ')``,
  target = ``' ' + text.split(' ')[-1]`` -- the last space-separated word with its leading space.
  Output type ``loglikelihood``; no target delimiter is added for that type
  (``lm_eval/api/task.py``, ``construct_requests``).
- ``lm_eval/api/model.py``, ``TemplateLM._encode_pair``: trailing whitespace of the context is
  moved onto the continuation; then ``whole = tok_encode(context + continuation)``,
  ``context_enc = tok_encode(context)`` and ``continuation_enc = whole[len(context_enc):]``.
  The target is never encoded on its own: SentencePiece would add a spurious word-boundary piece.
- ``lm_eval/models/huggingface.py``, ``tok_encode``: with ``add_bos_token`` unset, the
  tokenizer's default applies -- a BOS for SentencePiece tokenizers like ours. Both encodings
  get it, so it ends up in front of the context (``prepend_bos`` here).
- ``HFLM._loglikelihood_tokens``: the model sees ``(context_enc + continuation_enc)[-(max_length
  + 1):][:-1]`` (left truncation), right-padded into a batch; the continuation's log-likelihood
  is the sum of its tokens' log-probabilities and ``is_greedy`` is true when every continuation
  token is the argmax.
- ``lm_eval/api/metrics.py``: ``acc`` = mean of ``is_greedy``; ``perplexity`` =
  ``exp(-mean(loglikelihood))`` over passages (a per-passage, not per-token, mean).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from lib.core.progress import progress as progress_bar

from lib.core.errors import UserError
from lib.core.io import iter_jsonl
from lib.core.runtime import autocast
from lib.data.batch import Batch
from lib.tokenizer import Tokenizer

HARNESS_TASK = "lm-evaluation-harness lambada_openai"  # the label eval's metrics carry
HARNESS = f"{HARNESS_TASK} (loglikelihood: acc = is_greedy, perplexity = exp(-mean loglik))"


@dataclass(frozen=True)
class LambadaItem:
    context: list[int]   # BOS (if prepended) + the encoded context
    target: list[int]    # the tokens that follow the context in the encoding of the whole passage
    line: int = 0        # line of the passage in its file, for messages
    aligned: bool = True  # False when encode(context) is not a prefix of encode(context + target)


def split_passage(text: str) -> tuple[str, str]:
    """The harness's split (``lambada_openai.yaml``): everything before the last single space, and
    the last space-separated word with its leading space. Only ' ' separates words: a newline or
    tab inside the last chunk stays part of the target, as in the harness."""
    words = text.split(" ")
    return " ".join(words[:-1]), " " + words[-1]


def encode_pair(tokenizer: Tokenizer, context: str, continuation: str,
                prepend_bos: bool) -> tuple[list[int], list[int], bool]:
    """``TemplateLM._encode_pair`` for a causal model: (context ids, continuation ids, aligned).

    Trailing whitespace of the context moves to the continuation so the word-boundary marker
    '▁' starts the continuation's first piece, exactly as the harness does. The continuation is
    what follows the encoded context inside the encoding of the whole string; ``aligned`` says
    whether the context's own encoding is a prefix of it (it is unless a piece straddles the
    boundary, which SentencePiece's whitespace splitting prevents for our tokenizer; the harness
    does not check and neither do we change anything when it fails -- we only count it).
    """
    n_spaces = len(context) - len(context.rstrip())
    if n_spaces:
        continuation = context[-n_spaces:] + continuation
        context = context[:-n_spaces]
    bos = [tokenizer.bos_id] if prepend_bos else []
    whole = bos + tokenizer.encode(context + continuation)
    context_ids = bos + tokenizer.encode(context)
    return context_ids, whole[len(context_ids):], whole[:len(context_ids)] == context_ids


def read_lambada(path: str | Path, tokenizer: Tokenizer, prepend_bos: bool) -> list[LambadaItem]:
    """Tokenised passages of a LAMBADA jsonl file (one ``{"text": ...}`` per line). A malformed
    line stops with the file, the line number and what is wrong."""
    path = Path(path)
    items = []
    for lineno, record in iter_jsonl(path):
        text = record.get("text")
        where = f"{path}:{lineno}"
        if not isinstance(text, str):
            raise UserError(f"{where}: expected {{\"text\": \"...\"}}, got keys {sorted(record)}")
        context, target = split_passage(text)
        if not context.strip():
            raise UserError(f"{where}: passage needs a context before its last word (at least two words)")
        if target == " ":
            raise UserError(f"{where}: passage ends with a space, so its last word is empty; strip the text")
        context_ids, target_ids, aligned = encode_pair(tokenizer, context, target, prepend_bos)
        if not target_ids:
            raise UserError(f"{where}: the last word produced no tokens")
        items.append(LambadaItem(context_ids, target_ids, lineno, aligned))
    if not items:
        raise UserError(f"{path}: no passages; expected one {{\"text\": \"...\"}} per line")
    return items


@torch.no_grad()
def score_items(model: torch.nn.Module, items: list[LambadaItem], device: torch.device | str = "cpu",
                batch_size: int = 16, progress: bool = True, desc: str = "lambada",
                pad_id: int = 0, groups: list[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per passage: the summed log-likelihood of its target tokens and whether every one of them
    is the greedy argmax. One forward per batch.

    Sequences are right-padded (``Batch.right_padded``), as in the harness: under causal
    attention a real token never attends to a pad that comes after it, so no attention mask is
    needed and a row's logits are those of the row alone. The loss mask picks the target tokens. Passages are batched
    longest first (less padding); results come back in the input order. A sequence longer than
    the model's window keeps its last ``max_seq_len + 1`` tokens (left truncation).

    ``groups`` (one id per item, a group's items adjacent) keeps a group in one batch: a
    multiple-choice question's options go through one padded forward together.
    """
    device = torch.device(device)
    model.eval()
    max_len = model.cfg.max_seq_len
    for item in items:
        if len(item.target) > max_len:
            raise UserError(f"{desc}: line {item.line}: the last word has {len(item.target)} tokens, "
                            f"more than the model's window ({max_len})")
    logliks = np.zeros(len(items), dtype=np.float64)
    greedy = np.zeros(len(items), dtype=bool)
    bar = progress_bar(total=len(items), enabled=progress, desc=desc, unit="passage", leave=False)
    for rows in batch_rows(items, batch_size, groups):
        seqs = [(items[i].context + items[i].target)[-(max_len + 1):] for i in rows]
        masks = [[0] * (len(s) - len(items[i].target)) + [1] * len(items[i].target) for i, s in zip(rows, seqs)]
        batch = Batch.right_padded(seqs, masks, pad_id).to(device)
        with autocast(device):
            logits, _ = model(batch.inputs)
        mask = batch.loss_mask.bool()
        logprobs = F.log_softmax(logits[mask].float(), dim=-1)  # (scored tokens, vocab)
        wanted = batch.targets[mask]
        token_ll = logprobs.gather(1, wanted[:, None]).squeeze(1)
        token_miss = (logprobs.argmax(-1) != wanted).double()
        row_of = mask.nonzero()[:, 0]
        row_ll = torch.zeros(len(rows), dtype=torch.float64, device=device).index_add_(0, row_of, token_ll.double())
        row_miss = torch.zeros(len(rows), dtype=torch.float64, device=device).index_add_(0, row_of, token_miss)
        logliks[rows] = row_ll.cpu().numpy()
        greedy[rows] = (row_miss == 0).cpu().numpy()
        bar.update(len(rows))
    bar.close()
    return logliks, greedy


def batch_rows(items: list[LambadaItem], batch_size: int, groups: list[int] | None = None) -> list[list[int]]:
    """Indices of ``items`` per batch, longest group first; a group is never split (a batch may
    exceed ``batch_size`` only to hold one group larger than it)."""
    spans: list[list[int]] = []
    for i in range(len(items)):
        if groups is not None and spans and groups[spans[-1][0]] == groups[i]:
            spans[-1].append(i)
        else:
            spans.append([i])
    spans.sort(key=lambda span: -max(len(items[i].context) + len(items[i].target) for i in span))
    batches: list[list[int]] = []
    for span in spans:
        if batches and len(batches[-1]) + len(span) <= batch_size:
            batches[-1].extend(span)
        else:
            batches.append(list(span))
    return batches


def lambada_metrics(items: list[LambadaItem], logliks: np.ndarray, greedy: np.ndarray,
                    max_seq_len: int) -> dict:
    """The harness's figures plus counts. ``accuracy``: share of passages whose every target
    token is the argmax; ``perplexity``: exp(-mean over passages of the target's summed
    log-likelihood); ``mean_token_nll``: -(sum of log-likelihoods) / (number of target tokens)."""
    n = len(items)
    target_tokens = sum(len(it.target) for it in items)
    acc = float(greedy.mean())
    return {
        "accuracy": acc,
        # the harness's mean_stderr: sample standard deviation / sqrt(n)
        "accuracy_stderr": float(greedy.std(ddof=1) / math.sqrt(n)) if n > 1 else 0.0,
        "perplexity": math.exp(-float(logliks.mean())),
        "mean_token_nll": -float(logliks.sum()) / target_tokens,
        "passages": n,
        "target_tokens": target_tokens,
        "truncated": sum(len(it.context) + len(it.target) > max_seq_len + 1 for it in items),
        "boundary_mismatches": sum(not it.aligned for it in items),
    }


def evaluate_lambada(model: torch.nn.Module, items: list[LambadaItem], device: torch.device | str = "cpu",
                     batch_size: int = 16, progress: bool = True, desc: str = "lambada") -> dict:
    logliks, greedy = score_items(model, items, device, batch_size, progress, desc)
    return lambada_metrics(items, logliks, greedy, model.cfg.max_seq_len)
