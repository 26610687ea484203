"""A decoder-only transformer: RoPE, RMSNorm, SwiGLU, grouped-query causal attention via SDPA.

One idea per function. ``ModelConfig`` is both the ``pretrain.model`` params section and the
config.json stored next to the weights, so a checkpoint always says how to rebuild its model.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.params import check


@dataclass
class ModelConfig:
    n_layer: int = 4
    n_head: int = 4
    n_kv_head: int = 4
    d_model: int = 128
    d_ff: int = 352
    max_seq_len: int = 128
    rope_theta: float = 10000.0
    dropout: float = 0.0
    tie_embeddings: bool = True
    vocab_size: int = 0  # filled from the tokenizer, not from params

    def __post_init__(self):
        check(self.n_layer >= 1, "n_layer", "must be >= 1")
        check(self.n_head >= 1 and self.d_model % self.n_head == 0, "n_head",
              f"must divide d_model ({self.d_model})")
        check(self.n_kv_head >= 1 and self.n_head % self.n_kv_head == 0, "n_kv_head",
              f"must divide n_head ({self.n_head})")
        check((self.d_model // self.n_head) % 2 == 0, "d_model", "d_model / n_head must be even for RoPE")
        check(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_head

    def to_dict(self) -> dict:
        return asdict(self)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norm = x.float().pow(2).mean(-1, keepdim=True).add(self.eps).rsqrt()
        return (x.float() * norm).type_as(x) * self.weight


def rope_tables(head_dim: int, max_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[..., :d/2], x[..., d/2:]) by position-dependent angles; x is (B, H, T, D)."""
    x1, x2 = x.float().chunk(2, dim=-1)
    if cos.dim() == 2:  # (T, D/2) shared by every row; per-row tables arrive as (B, 1, T, D/2)
        cos, sin = cos[None, None], sin[None, None]
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).type_as(x)


class Attention(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        kv_dim = cfg.n_kv_head * cfg.head_dim
        self.wq = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.wk = nn.Linear(cfg.d_model, kv_dim, bias=False)
        self.wv = nn.Linear(cfg.d_model, kv_dim, bias=False)
        self.wo = nn.Linear(cfg.d_model, cfg.d_model, bias=False)
        self.wo.residual_projection = True

    def forward(self, x, cos, sin, cache=None, attn_mask=None):
        B, T, _ = x.shape
        cfg = self.cfg
        q = self.wq(x).view(B, T, cfg.n_head, cfg.head_dim).transpose(1, 2)
        k = self.wk(x).view(B, T, cfg.n_kv_head, cfg.head_dim).transpose(1, 2)
        v = self.wv(x).view(B, T, cfg.n_kv_head, cfg.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache is not None:
            k, v = cache.update(k, v)
        groups = cfg.n_head // cfg.n_kv_head
        if groups > 1:
            k, v = k.repeat_interleave(groups, dim=1), v.repeat_interleave(groups, dim=1)
        dropout = cfg.dropout if self.training else 0.0
        S = k.shape[2]
        if attn_mask is None and T == S:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout)
        else:
            if attn_mask is None and T > 1:  # new tokens after a cached prefix: causal, offset by S - T
                attn_mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout)
        return self.wo(y.transpose(1, 2).reshape(B, T, cfg.d_model))


class SwiGLU(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.w_gate = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.w_up = nn.Linear(cfg.d_model, cfg.d_ff, bias=False)
        self.w_down = nn.Linear(cfg.d_ff, cfg.d_model, bias=False)
        self.w_down.residual_projection = True

    def forward(self, x):
        return self.w_down(F.silu(self.w_gate(x)) * self.w_up(x))


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attn_norm = RMSNorm(cfg.d_model)
        self.attn = Attention(cfg)
        self.mlp_norm = RMSNorm(cfg.d_model)
        self.mlp = SwiGLU(cfg)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, cos, sin, cache=None, attn_mask=None):
        x = x + self.drop(self.attn(self.attn_norm(x), cos, sin, cache, attn_mask))
        return x + self.drop(self.mlp(self.mlp_norm(x)))


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.vocab_size <= 0:
            raise ValueError("ModelConfig.vocab_size must be set from the tokenizer")
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = RMSNorm(cfg.d_model)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed.weight
        cos, sin = rope_tables(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        # GPT-2 style: N(0, 0.02), residual projections scaled by 1/sqrt(2 * n_layer) so the
        # residual stream's variance does not grow with depth.
        if isinstance(module, nn.Linear):
            std = 0.02 / math.sqrt(2 * self.cfg.n_layer) if getattr(module, "residual_projection", False) else 0.02
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, loss_mask=None,
                caches=None, start_pos: int = 0, attn_mask=None, positions: torch.Tensor | None = None):
        """Logits for ``idx`` (B, T); with ``targets``, also the mean cross-entropy.

        ``loss_mask`` (B, T) of 0/1 restricts the loss to chosen targets (SFT responses);
        ``targets`` equal to -100 are ignored as well. ``caches`` (one KVCache per layer) with
        ``start_pos`` continue a sequence; ``positions`` (B, T) gives per-row RoPE positions
        (left-padded batches) and ``attn_mask`` (B, 1, T, S) bool, True = may attend.
        """
        T = idx.shape[1]
        if start_pos + T > self.cfg.max_seq_len:
            raise ValueError(f"sequence of {start_pos + T} tokens exceeds max_seq_len {self.cfg.max_seq_len}")
        if positions is None:
            cos = self.rope_cos[start_pos:start_pos + T]
            sin = self.rope_sin[start_pos:start_pos + T]
        else:  # (B, T, D/2), broadcast over heads in apply_rope
            cos, sin = self.rope_cos[positions][:, None], self.rope_sin[positions][:, None]
        x = self.drop(self.embed(idx))
        for i, block in enumerate(self.blocks):
            x = block(x, cos, sin, None if caches is None else caches[i], attn_mask)
        logits = self.lm_head(self.norm(x))
        if targets is None:
            return logits, None
        if loss_mask is not None:
            targets = targets.masked_fill(loss_mask == 0, -100)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    def num_params(self, exclude_embeddings: bool = True) -> int:
        n = sum(p.numel() for p in self.parameters())
        if exclude_embeddings and not self.cfg.tie_embeddings:
            n -= self.embed.weight.numel()
        return n

    def flops_per_token(self, seq_len: int) -> int:
        """Training FLOPs per token: 6N for the matmuls plus 12 * L * d * T for attention scores
        (the PaLM appendix B formula), N the non-embedding parameter count."""
        n = sum(p.numel() for name, p in self.named_parameters() if not name.startswith("embed"))
        return 6 * n + 12 * self.cfg.n_layer * self.cfg.d_model * seq_len


class KVCache:
    """Keys and values of the tokens seen so far, for one layer (B, H_kv, T, D)."""

    def __init__(self):
        self.k = self.v = None

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.k = k if self.k is None else torch.cat([self.k, k], dim=2)
        self.v = v if self.v is None else torch.cat([self.v, v], dim=2)
        return self.k, self.v
