"""A decoder-only transformer assembled from ``lib.model.layers`` as ``ModelConfig`` says: RoPE /
learned / sinusoidal / no positions, RMSNorm / LayerNorm, SwiGLU / GELU / ReLU², MHA / GQA / MQA.

``ModelConfig`` (``lib.model.config``) is both the ``pretrain.model`` params section and the
config.json stored next to the weights, so a checkpoint always says how to rebuild its model.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.model.layers import Attention, make_mlp, make_norm, rope_tables, sinusoidal_table
from lib.model.config import ModelConfig
from lib.model.fused import softcap


class Block(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.attn_norm = make_norm(cfg.norm, cfg.d_model, cfg.norm_eps)
        attn_dropout = cfg.dropout if cfg.attn_dropout is None else cfg.attn_dropout
        self.attn = Attention(cfg.d_model, cfg.n_head, cfg.n_kv_head, attn_dropout, cfg.qk_norm, cfg.norm_eps)
        self.mlp_norm = make_norm(cfg.norm, cfg.d_model, cfg.norm_eps)
        self.mlp = make_mlp(cfg.mlp, cfg.d_model, cfg.d_ff)
        self.drop = nn.Dropout(cfg.dropout)

    def forward(self, x, rope=None, cache=None, attn_mask=None):
        x = x + self.drop(self.attn(self.attn_norm(x), rope, cache, attn_mask))
        return x + self.drop(self.mlp(self.mlp_norm(x)))


class GPT(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        if cfg.vocab_size <= 0:
            raise ValueError("ModelConfig.vocab_size must be set from the tokenizer")
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.vocab_size, cfg.d_model)
        if cfg.positions == "learned":
            self.pos_embed = nn.Embedding(cfg.max_seq_len, cfg.d_model)
        elif cfg.positions == "sinusoidal":
            self.register_buffer("pos_table", sinusoidal_table(cfg.max_seq_len, cfg.d_model), persistent=False)
        elif cfg.positions == "rope":
            cos, sin = rope_tables(cfg.head_dim, cfg.max_seq_len, cfg.rope_theta)
            self.register_buffer("rope_cos", cos, persistent=False)
            self.register_buffer("rope_sin", sin, persistent=False)
        self.drop = nn.Dropout(cfg.dropout)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.n_layer))
        self.norm = make_norm(cfg.norm, cfg.d_model, cfg.norm_eps)
        self.lm_head = nn.Linear(cfg.d_model, cfg.vocab_size, bias=False)
        if cfg.tie_embeddings:
            self.lm_head.weight = self.embed.weight
        self.apply(self._init_weights)

    def _init_weights(self, module: nn.Module) -> None:
        # GPT-2 style: N(0, init_std), residual projections scaled by 1/sqrt(2 * n_layer) so the
        # residual stream's variance does not grow with depth.
        # muP: the hidden matrices' std shrinks as 1/sqrt(fan_in) relative to the tuning width
        # (init_std / sqrt(width_mult)); the embeddings and the output matrix keep init_std (the
        # output's 1/width is the logit multiplier in forward).
        std = self.cfg.init_std
        if isinstance(module, nn.Linear):
            if module is not self.lm_head and self.cfg.width_mult != 1.0:
                std = std / math.sqrt(self.cfg.width_mult)
            if getattr(module, "residual_projection", False):
                if self.cfg.zero_init_proj:  # every block starts as the identity (the speedrun's init)
                    nn.init.zeros_(module.weight)
                    return
                std = std / math.sqrt(2 * self.cfg.n_layer)
            nn.init.normal_(module.weight, mean=0.0, std=std)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=std)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, loss_mask=None,
                caches=None, start_pos: int = 0, attn_mask=None, positions: torch.Tensor | None = None):
        """Logits for ``idx`` (B, T); with ``targets``, also the mean cross-entropy.

        ``loss_mask`` (B, T) of 0/1 restricts the loss to chosen targets (SFT responses);
        ``targets`` equal to -100 are ignored as well. ``caches`` (one KVCache per layer) with
        ``start_pos`` continue a sequence; ``positions`` (B, T) gives per-row positions
        (left-padded batches) and ``attn_mask`` (B, 1, T, S) bool, True = may attend.
        """
        T = idx.shape[1]
        if start_pos + T > self.cfg.max_seq_len:
            raise ValueError(f"sequence of {start_pos + T} tokens exceeds max_seq_len {self.cfg.max_seq_len}")
        x = self.embed(idx)
        rope = None
        kind = self.cfg.positions
        if kind == "rope":
            if positions is None:
                rope = self.rope_cos[start_pos:start_pos + T], self.rope_sin[start_pos:start_pos + T]
            else:  # (B, 1, T, D/2): broadcast over heads in fused.rope
                rope = self.rope_cos[positions][:, None], self.rope_sin[positions][:, None]
        elif kind != "none":
            pos = torch.arange(start_pos, start_pos + T, device=idx.device) if positions is None else positions
            x = x + (self.pos_embed(pos) if kind == "learned" else self.pos_table[pos])
        x = self.drop(x)
        for i, block in enumerate(self.blocks):
            x = block(x, rope, None if caches is None else caches[i], attn_mask)
        x = self.norm(x)
        if self.cfg.width_mult != 1.0:  # muP's output multiplier (1 at the tuning width: skipped, same bits)
            # on the head's input: the same product as scaling the logits, over d_model columns instead
            # of vocab_size (no pass over the logits, nor over their gradient)
            x = x * (1.0 / self.cfg.width_mult)
        logits = self.lm_head(x)
        if self.cfg.logit_softcap > 0:  # tanh keeps logits in (-cap, cap): no overconfident early spikes
            logits = softcap(logits.float(), self.cfg.logit_softcap)
        if targets is None:
            return logits, None
        if loss_mask is not None:
            targets = targets.masked_fill(loss_mask == 0, -100)
        loss = F.cross_entropy(logits.float().view(-1, logits.size(-1)), targets.reshape(-1), ignore_index=-100)
        return logits, loss

    def num_params(self, exclude_embeddings: bool = True) -> int:
        """Distinct parameters; with ``exclude_embeddings``, less the input token and position
        tables (a tied embedding counts once, as the output matrix it also is)."""
        n = sum(p.numel() for p in self.parameters())
        if exclude_embeddings:
            if not self.cfg.tie_embeddings:
                n -= self.embed.weight.numel()
            if self.cfg.positions == "learned":
                n -= self.pos_embed.weight.numel()
        return n

    def flops_per_token(self, seq_len: int) -> int:
        """Training FLOPs per token, for MFU (the PaLM paper's appendix B convention):

            6 * N_matmul + 12 * n_layer * d_model * seq_len

        N_matmul = n_layer * (2 d^2 + 2 d d_kv + k d d_ff) + d * vocab is the weight count of every
        matrix multiply (k = 3 for SwiGLU, 2 for GELU and ReLU²; d_kv = n_kv_head * head_dim); each weight
        costs 2 FLOPs forward and 4 backward. The second term is attention's QK^T and AV
        (4 * T * d forward per layer, x3 for training), counted without the causal half-saving as
        PaLM and nanoGPT do. Embedding lookups, norms and activations are not counted.
        """
        c = self.cfg
        d, d_kv = c.d_model, c.n_kv_head * c.head_dim
        mlp = (3 if c.mlp == "swiglu" else 2) * d * c.d_ff
        n_matmul = c.n_layer * (2 * d * d + 2 * d * d_kv + mlp) + d * c.vocab_size
        return 6 * n_matmul + 12 * c.n_layer * d * seq_len


def padded_causal_mask(valid: torch.Tensor, q_len: int | None = None) -> torch.Tensor:
    """The ``attn_mask`` for a padded batch: ``valid`` (B, S) bool marks real tokens; the result
    (B, 1, T, S) lets each of the last T queries see earlier valid keys. Padding queries see
    themselves, so no row is all-False (SDPA would return NaN there)."""
    B, S = valid.shape
    T = S if q_len is None else q_len
    causal = torch.ones(T, S, dtype=torch.bool, device=valid.device).tril(diagonal=S - T)
    mask = causal[None] & valid[:, None, :]
    own = torch.arange(S - T, S, device=valid.device)[:, None] == torch.arange(S, device=valid.device)[None]
    return (mask | own[None])[:, None]


class KVCache:
    """Keys and values of the tokens seen so far, for one layer, in a preallocated buffer
    (B, H_kv, capacity, D): each new token is written in place instead of concatenating the
    whole cache again (a copy of every earlier key per token). ``capacity`` defaults to growing
    by doubling; generation passes the length it can reach, so the buffer is allocated once."""

    def __init__(self, capacity: int | None = None):
        self.capacity = capacity
        self.length = 0
        self._k = self._v = None

    @property
    def k(self) -> torch.Tensor | None:
        return None if self._k is None else self._k[:, :, :self.length]

    @property
    def v(self) -> torch.Tensor | None:
        return None if self._v is None else self._v[:, :, :self.length]

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        T = k.shape[2]
        end = self.length + T
        if self._k is None or end > self._k.shape[2]:
            self._grow(k, v, end)
        self._k[:, :, self.length:end] = k
        self._v[:, :, self.length:end] = v
        self.length = end
        return self.k, self.v

    def _grow(self, k: torch.Tensor, v: torch.Tensor, needed: int) -> None:
        old = 0 if self._k is None else self._k.shape[2]
        size = max(needed, self.capacity or 0, 2 * old)
        B, H, _, D = k.shape
        new_k, new_v = k.new_empty(B, H, size, D), v.new_empty(B, H, size, v.shape[-1])
        if self._k is not None:
            new_k[:, :, :self.length] = self.k
            new_v[:, :, :self.length] = self.v
        self._k, self._v = new_k, new_v
