"""The one validation pass, used by pretrain (every ``eval_every`` steps), SFT and eval: the mean
loss over fixed windows or batches, the windows themselves, bits per byte and the unigram
baseline. LAMBADA, computed as lm-evaluation-harness does, lives in ``lib/eval/lambada.py``."""
from __future__ import annotations

import itertools
import math
from typing import Iterable, Iterator

import numpy as np
import torch

from lib.core.errors import UserError
from lib.core.progress import progress as progress_bar
from lib.core.runtime import autocast
from lib.shards import Shard
from lib.train.distributed import SINGLE, DistContext
from lib.train.windows import to_tensors

Batch = tuple[torch.Tensor, ...]  # (inputs, targets) or (inputs, targets, loss_mask)


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


def val_windows(shards: list[Shard], seq_len: int, batch_size: int, max_batches: int | None = None,
                rank: int = 0, world_size: int = 1, pin_memory: bool = False, tails: bool = False) -> Iterator[Batch]:
    """Non-overlapping windows of ``seq_len + 1`` tokens covering every shard once, in order, batched.

    ``tails`` adds each shard's shorter last window (batched by equal length after the full
    ones, so no padding is needed), so that every token but a shard's first is predicted exactly
    once: what eval's exact bits per byte needs. Under DDP rank ``r`` takes windows
    ``r::world_size``; the last ``n % world_size`` are left out so every rank runs the same number
    of batches (collectives would otherwise hang).
    """
    if tails and world_size != 1:
        raise ValueError("tails=True is for one process: a rank's share would need padding")
    pin = pin_memory and torch.cuda.is_available()
    batches = itertools.chain(_full_batches(shards, seq_len, batch_size, rank, world_size),
                              _tail_batches(shards, seq_len, batch_size) if tails else ())
    for rows in itertools.islice(batches, max_batches):
        yield to_tensors(rows, pin)


def _full_batches(shards: list[Shard], seq_len: int, batch_size: int, rank: int, world_size: int):
    counts = [max(0, (len(shard.tokens) - 1) // seq_len) for shard in shards]
    usable = sum(counts) - sum(counts) % world_size
    starts = ((s, w * seq_len) for s, n in enumerate(counts) for w in range(n))
    mine = itertools.islice(starts, rank, usable, world_size)
    while picked := list(itertools.islice(mine, batch_size)):
        rows = np.empty((len(picked), seq_len + 1), dtype=np.int64)
        for k, (s, b) in enumerate(picked):
            rows[k] = shards[s].tokens[b:b + seq_len + 1]
        yield rows


def _tail_batches(shards: list[Shard], seq_len: int, batch_size: int):
    """Each shard's last window when shorter than ``seq_len + 1`` (one per shard, so memory stays
    flat), longest first, batched by equal length."""
    by_length: dict[int, list[np.ndarray]] = {}
    for shard in shards:
        n = len(shard.tokens)
        start = max(0, (n - 1) // seq_len) * seq_len
        if n - start >= 2:
            by_length.setdefault(n - start, []).append(np.asarray(shard.tokens[start:], dtype=np.int64))
    for _, rows in sorted(by_length.items(), reverse=True):
        for i in range(0, len(rows), batch_size):
            yield np.stack(rows[i:i + batch_size])


@torch.no_grad()
def nll(model: torch.nn.Module, batches: Iterable[Batch], device: torch.device | str,
        ctx: DistContext = SINGLE) -> tuple[float, int]:
    """(summed NLL in nats, scored tokens) over batches of (inputs, targets[, loss_mask]), in eval
    mode. Under torchrun each rank passes its share of the batches and gets the sums over all."""
    device = torch.device(device)
    model.eval()
    total, count = 0.0, 0
    for tensors in batches:
        tensors = [t.to(device) for t in tensors]
        with autocast(device):
            _, loss = model(tensors[0], tensors[1], loss_mask=tensors[2] if len(tensors) > 2 else None)
        n = int((tensors[2] != 0).sum()) if len(tensors) > 2 else tensors[1].numel()
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
