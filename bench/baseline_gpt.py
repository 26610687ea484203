"""The benchmarks' third-party-style baseline: a GPT-2 as nanoGPT trains it, written here from
the published recipe (not copied): learned absolute positions, LayerNorm, a 4x GELU MLP, one
fused qkv projection, tied input/output embeddings, N(0, 0.02) init with the residual
projections at 0.02 / sqrt(2 * n_layer). nanoGPT's train.py defaults to bias=False and dropout 0
for pretraining; so does this.

It trains through the library's step (lib.train.loop.Stepper) and optimizer builder with
nanoGPT's settings (``baseline_params``): AdamW with weight decay on the matrices only (the
builder's two groups when no role has its own rate), betas (0.9, 0.95), gradient clipping at
1.0, and a linear warmup then cosine decay to min_lr = lr / 10 at the last step (nanoGPT's
get_lr, which lib.train.schedule.lr_at matches but for warming up over warmup + 1 steps).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.train.params import TrainParams


class BaselineBlock(nn.Module):
    def __init__(self, d: int, n_head: int, bias: bool = False):
        super().__init__()
        self.n_head = n_head
        self.ln_1, self.ln_2 = nn.LayerNorm(d, bias=bias), nn.LayerNorm(d, bias=bias)
        self.c_attn = nn.Linear(d, 3 * d, bias=bias)
        self.c_proj = nn.Linear(d, d, bias=bias)
        self.c_fc = nn.Linear(d, 4 * d, bias=bias)
        self.mlp_proj = nn.Linear(4 * d, d, bias=bias)
        self.gelu = nn.GELU()  # exact erf GELU, as nanoGPT's MLP

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + self.c_proj(y.transpose(1, 2).reshape(B, T, C))
        return x + self.mlp_proj(self.gelu(self.c_fc(self.ln_2(x))))


class BaselineGPT(nn.Module):
    def __init__(self, vocab: int, d: int, n_layer: int, n_head: int, max_len: int, bias: bool = False):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(max_len, d)
        self.blocks = nn.ModuleList(BaselineBlock(d, n_head, bias) for _ in range(n_layer))
        self.ln_f = nn.LayerNorm(d, bias=bias)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.wte.weight  # weight tying
        for name, p in self.named_parameters():
            if p.dim() == 2:
                std = 0.02 / math.sqrt(2 * n_layer) if name.endswith(("c_proj.weight", "mlp_proj.weight")) else 0.02
                nn.init.normal_(p, mean=0.0, std=std)
            elif name.endswith(".bias"):
                nn.init.zeros_(p)

    def forward(self, idx, targets=None, loss_mask=None):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.blocks:
            x = block(x)
        logits = self.head(self.ln_f(x))
        if targets is None:
            return logits, None
        if loss_mask is not None:  # the library's batches may carry one (SFT); -100 is ignored
            targets = targets.masked_fill(loss_mask == 0, -100)
        return logits, F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1),
                                       ignore_index=-100)


# nanoGPT's baby-GPT recipe (config/train_shakespeare_char.py): lr 1e-3, min_lr lr/10, beta2 0.99,
# warmup 100 of 5000 iterations; the benches sweep its lr and take the best per shape.
NANOGPT = dict(lr=1e-3, min_lr_ratio=0.1, beta1=0.9, beta2=0.99, weight_decay=0.1, warmup=0.02, grad_clip=1.0)


def baseline_params(lr: float, steps: int = 1, warmup: float = 0.0, min_lr_ratio: float = 0.1,
                    weight_decay: float = 0.1, beta1: float = 0.9, beta2: float = 0.95, grad_clip: float = 1.0,
                    schedule: str = "cosine") -> TrainParams:
    """nanoGPT's optimizer and schedule as library params: AdamW for every matrix at one rate
    (decayed; gains not), warmup over ``warmup`` of ``steps``, then decay to lr * min_lr_ratio."""
    return TrainParams(optimizer="adamw", lr=lr, min_lr=lr * min_lr_ratio, warmup_steps=round(warmup * steps),
                       schedule=schedule, weight_decay=weight_decay, beta1=beta1, beta2=beta2,
                       grad_clip=grad_clip)
