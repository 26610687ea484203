"""The one validation pass, used by pretrain (every ``eval_every`` steps), SFT and eval: the mean
loss over fixed batches (the windows are ``lib.data.val_windows``), bits per byte and the unigram
baseline. LAMBADA, computed as lm-evaluation-harness does, lives in ``lib/eval/lambada.py``."""
from __future__ import annotations

import math
from typing import Iterable, Iterator

import numpy as np
import torch

from lib.core.errors import UserError
from lib.core.progress import progress as progress_bar
from lib.core.runtime import autocast
from lib.core.distributed import SINGLE, DistContext
from lib.data.batch import Batch
from lib.data.shards import Shard
from lib.data.val_windows import val_windows


def unigram_entropy(tokens: np.ndarray) -> float:
    """Entropy (nats/token) of the empirical token distribution: the loss of the best model that
    ignores context, measured on the very tokens it is scored on (a strict baseline)."""
    counts = np.bincount(np.asarray(tokens, dtype=np.int64))
    p = counts[counts > 0] / counts.sum()
    return float(-(p * np.log(p)).sum())


def bits_per_byte(loss_nats_per_token: float, tokens: int, text_bytes: int) -> float:
    """Tokenizer-independent loss: total nats over the split's tokens, in bits, per UTF-8 byte."""
    return loss_nats_per_token * tokens / (text_bytes * math.log(2))


def predicted_tokens(shards: list[Shard]) -> int:
    """Tokens of a split that have a prediction: all but the first of each shard (a BOS)."""
    return sum(max(0, len(s.tokens) - 1) for s in shards)


@torch.no_grad()
def nll(model: torch.nn.Module, batches: Iterable[Batch], device: torch.device | str,
        ctx: DistContext = SINGLE) -> tuple[float, int]:
    """(summed NLL in nats, scored tokens) over batches, in eval mode (SFT's masked out tokens
    are not scored). Under torchrun each rank passes its share of the batches and gets the sums over all."""
    device = torch.device(device)
    model.eval()
    total, count = 0.0, 0
    for batch in batches:
        batch = batch.to(device)
        with autocast(device):
            _, loss = model(batch.inputs, batch.targets, loss_mask=batch.loss_mask)
        n = batch.scored_tokens
        total += float(loss) * n
        count += n
    if ctx.enabled:
        sums = torch.tensor([total, float(count)], dtype=torch.float64, device=device)
        torch.distributed.all_reduce(sums)
        total, count = float(sums[0]), int(sums[1])
    return total, count


def mean_loss(model: torch.nn.Module, batches: Iterable[Batch], device: torch.device | str,
              ctx: DistContext = SINGLE) -> float:
    """Token-weighted mean cross-entropy: the val loss pretrain and SFT track."""
    total, count = nll(model, batches, device, ctx)
    if count == 0:
        raise UserError("validation set is empty: no complete window fits; lower seq_len or add val documents")
    return total / count


def val_nll(model: torch.nn.Module, shards: list[Shard], device: torch.device | str = "cpu",
            batch_size: int = 16, max_batches: int | None = None, progress: bool = True,
            desc: str = "val") -> tuple[float, int]:
    """(summed NLL, predicted tokens) over the whole val split (or its first ``max_batches``), in
    windows of the model's ``max_seq_len``: eval's exact bits per byte."""
    batches = val_windows(shards, model.cfg.max_seq_len, batch_size, max_batches, tails=True)
    total, count = nll(model, progress_bar(batches, enabled=progress, desc=desc, unit="batch", leave=False), device)
    if count == 0:
        raise UserError("validation split is empty: no token to predict; add val documents")
    return total, count


def val_metrics(nats: float, tokens: int, split_tokens: int, text_bytes: int) -> dict:
    """Loss, perplexity and bits per byte. Bits per byte = total nats / (ln 2 * UTF-8 bytes of the
    split's documents); when only ``tokens`` of the ``split_tokens`` predicted tokens were scored
    (``val_batches`` set), the mean loss stands in for the unscored ones."""
    loss = nats / tokens
    return {
        "val_loss": loss,
        "val_perplexity": math.exp(loss),
        "val_bpb": bits_per_byte(loss, split_tokens, text_bytes),
        "val_tokens": tokens,
        "val_coverage": tokens / split_tokens,
    }
