"""Validation loss over the complete val split, bits per byte, the unigram baseline, eval params."""
from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torch.nn as nn

from lib.eval.params import EvalParams
from lib.eval.validation import (bits_per_byte, predicted_tokens, unigram_entropy, val_metrics,
                          val_nll)
from lib.model.config import ModelConfig
from lib.model.gpt import GPT
from lib.core.params import ParamsError, from_mapping
from lib.data.shards import Shard


class Successor(nn.Module):
    """Logit ``c`` for (previous token + 1) % vocab, 0 elsewhere; records the input widths."""

    def __init__(self, vocab: int = 10, max_seq_len: int = 4, c: float = 3.0):
        super().__init__()
        self.cfg = SimpleNamespace(max_seq_len=max_seq_len)
        self.vocab, self.c, self.widths = vocab, c, []

    def forward(self, idx, targets=None, loss_mask=None, attn_mask=None, positions=None):
        self.widths += [idx.shape[1]] * idx.shape[0]
        logits = torch.zeros(*idx.shape, self.vocab).scatter_(2, ((idx + 1) % self.vocab)[..., None], self.c)
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss


def shard(tokens) -> Shard:
    return Shard(Path("mem"), np.asarray(tokens, dtype=np.uint16), np.zeros(2, dtype=np.uint64))


def test_every_token_but_the_first_of_each_shard_is_scored():
    model = Successor(vocab=10, max_seq_len=4)
    hit = model.c - math.log(math.exp(model.c) + 9)
    miss = -math.log(math.exp(model.c) + 9)
    a = [i % 10 for i in range(11)]        # 10 predictions, all hits; windows 4 + 4 + 2
    b = [3, 4, 5, 9, 0, 1, 2]              # 6 predictions, one miss (5 -> 9)
    shards = [shard(a), shard(b)]
    assert predicted_tokens(shards) == 16
    nats, count = val_nll(model, shards, batch_size=2, progress=False)
    assert count == 16
    assert nats == pytest.approx(-(15 * hit + miss))
    assert sorted(model.widths) == [2, 2, 4, 4, 4]  # the short tails are scored too


def test_max_batches_limits_the_pass():
    model = Successor(vocab=10, max_seq_len=4)
    shards = [shard([i % 10 for i in range(41)])]  # 10 full windows
    _, count = val_nll(model, shards, batch_size=3, max_batches=2, progress=False)
    assert count == 2 * 3 * 4


def test_val_nll_equals_the_models_own_loss():
    torch.manual_seed(0)
    model = GPT(ModelConfig(n_layer=1, n_head=2, n_kv_head=2, d_model=16, d_ff=32, max_seq_len=8, vocab_size=30)).eval()
    tokens = np.random.default_rng(0).integers(0, 30, 8 * 5 + 1)
    nats, count = val_nll(model, [shard(tokens)], batch_size=2, progress=False)
    data = torch.from_numpy(tokens.astype(np.int64))
    with torch.no_grad():
        _, loss = model(data[:-1].view(5, 8), data[1:].view(5, 8))
    assert count == 40 and nats / count == pytest.approx(float(loss), rel=1e-5)


def test_val_metrics_definitions():
    m = val_metrics(nats=200.0, tokens=100, split_tokens=100, text_bytes=400)
    assert m["val_loss"] == 2.0 and m["val_perplexity"] == pytest.approx(math.exp(2.0))
    assert m["val_bpb"] == pytest.approx(200.0 / (400 * math.log(2)))  # total nats / bytes, in bits
    assert m["val_coverage"] == 1.0
    part = val_metrics(nats=100.0, tokens=50, split_tokens=100, text_bytes=400)
    assert part["val_bpb"] == pytest.approx(m["val_bpb"]) and part["val_coverage"] == 0.5


def test_bits_per_byte_and_unigram_entropy():
    assert bits_per_byte(math.log(2), tokens=10, text_bytes=10) == pytest.approx(1.0)
    assert bits_per_byte(math.log(2), tokens=10, text_bytes=40) == pytest.approx(0.25)
    assert unigram_entropy(np.array([0, 1, 0, 1])) == pytest.approx(math.log(2))
    assert unigram_entropy(np.array([5, 5, 5])) == pytest.approx(0.0)


@pytest.mark.parametrize("data,match", [
    ({"batch_size": 0}, "batch_size"),
    ({"val_batches": 0}, "val_batches"),
    ({"lambada_files": []}, "lambada_files"),
    ({"prepend_bos": "yes"}, "prepend_bos"),
    ({"lambada_file": ["x"]}, "did you mean 'lambada_files'"),
])
def test_eval_params_validation(data, match):
    with pytest.raises(ParamsError, match=match):
        from_mapping(EvalParams, data, "params.yaml: eval")


def test_eval_params_defaults():
    p = from_mapping(EvalParams, {"val_batches": None}, "params.yaml: eval")
    assert p.val_batches is None and p.prepend_bos is True
