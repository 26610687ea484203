"""The shipped recipe at another shape: params.yaml's ``pretrain:`` section loaded and validated by
the stage's own loader, with only the shape, the step count and one learning-rate multiplier
overridden, and the model built by the stage's own builder (lib.hf.import_.init_model). What a
bench trains with these is what ``dvc repro`` would train at that shape.

The overrides, and nothing else:
- shape: n_layer, d_model, n_head (= n_kv_head, as shipped), d_ff at the shipped d_ff / d_model
  ratio (rounded to a multiple of 32), max_seq_len = seq_len, batch_size;
- steps, with warmup_steps kept at the shipped fraction of the steps (the schedule's shape);
- ``lr_mult``: one factor on every peak rate (lr, min_lr, muon_lr, embed_lr, head_lr); with
  ``muon_mult``, Muon's rate gets that factor instead (a sweep of the AdamW groups alone).
Everything else (Muon, rates at the base width and their width scaling, init, dropout, QK-norm,
tied embeddings, weight decay, clipping, schedule kind) is params.yaml's.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from lib.core.params import PARAMS_FILE, load_section
from lib.hf.import_ import init_model
from lib.train.pretrain import PretrainParams

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Shape:
    n_layer: int
    d_model: int
    seq_len: int = 256
    batch: int = 8

    @property
    def n_head(self) -> int:  # head size 64, as GPT-2 and bench_model
        return max(1, self.d_model // 64)

    @property
    def name(self) -> str:
        return f"{self.n_layer}x{self.d_model}"


SHAPES = {s.name: s for s in (Shape(2, 128), Shape(6, 384), Shape(8, 512))}


def scaled_rates(p: PretrainParams, lr_mult: float, muon_mult: float | None = None) -> dict:
    """Every peak rate of ``p`` times ``lr_mult`` (None stays None: it follows lr); Muon's times
    ``muon_mult`` when given."""
    out = {k: getattr(p, k) * lr_mult for k in ("lr", "min_lr")}
    out["muon_lr"] = p.muon_lr * (lr_mult if muon_mult is None else muon_mult)
    out.update({k: None if getattr(p, k) is None else getattr(p, k) * lr_mult for k in ("embed_lr", "head_lr")})
    return out


def shipped_params(shape: Shape, steps: int, lr_mult: float = 1.0, muon_mult: float | None = None,
                   path: str | Path = ROOT / PARAMS_FILE) -> PretrainParams:
    """params.yaml's pretrain section at ``shape`` for ``steps`` steps, every rate times ``lr_mult``."""
    p = load_section("pretrain", PretrainParams, path)
    m = p.model
    d_ff = max(32, round(m.d_ff / m.d_model * shape.d_model / 32) * 32)
    model = dataclasses.replace(m, n_layer=shape.n_layer, d_model=shape.d_model, n_head=shape.n_head,
                                n_kv_head=shape.n_head, d_ff=d_ff, max_seq_len=shape.seq_len)
    warmup = round(p.warmup_steps / p.steps * steps)
    return dataclasses.replace(p, model=model, seq_len=shape.seq_len, batch_size=shape.batch, steps=steps,
                               warmup_steps=warmup, tokens_per_step=0, **scaled_rates(p, lr_mult, muon_mult))


class _Vocab:
    """What init_model reads of a tokenizer on the scratch path: its vocabulary size."""
    def __init__(self, vocab_size: int):
        self.vocab_size = vocab_size


def build_model(p: PretrainParams, vocab_size: int):
    """The stage's model: ``init_model(params.init, tokenizer, params.model)`` (scratch as shipped)."""
    if p.init != "scratch":
        raise SystemExit(f"params.yaml: pretrain.init is {p.init!r}; the benches train the scratch recipe")
    model, _ = init_model(p.init, _Vocab(vocab_size), p.model)
    return model
