"""The transformer's building blocks, one variant per class: norms, position encodings,
attention and MLPs. ``lib.model.gpt`` assembles them from a ``ModelConfig``.

Parameter names of the default variant (attn.wq/wk/wv/wo, mlp.w_gate/w_up/w_down, *_norm.weight)
are a contract: the Llama exporter maps them one to one.

This is the training path, in plain PyTorch: ``nn.Linear`` calls, SDPA. What only pays while
decoding one token at a time (transposed weight copies) is installed from outside, by
``lib.infer.prepare.prepare_for_decode``, on the projections named here (``Attention.qkv``,
``SwiGLU.gate_up`` and the ``nn.Linear`` layers).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.model import fused


_FUSED_RMS_NORM = getattr(torch, "_fused_rms_norm", None)  # private; absent in older torch


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # F.rms_norm decomposes into five ops in eager mode on CPU; the fused kernel with the gain
        # inside (forward and backward) made the whole training step ~3% faster (bench_model).
        if x.dtype == torch.float32 and _FUSED_RMS_NORM is not None and not torch.compiler.is_compiling():
            return _FUSED_RMS_NORM(x, [x.shape[-1]], self.weight, self.eps)[0]
        return rms_normalize(x, self.eps) * self.weight


def rms_normalize(x: torch.Tensor, eps: float) -> torch.Tensor:
    """x / rms(x) over the last dimension, without a gain. Under bf16 autocast it normalises in
    fp32: the mean of squares loses precision in bf16."""
    if x.dtype == torch.float32:
        if _FUSED_RMS_NORM is not None and not torch.compiler.is_compiling():
            return _FUSED_RMS_NORM(x, [x.shape[-1]], None, eps)[0]
        return F.rms_norm(x, (x.shape[-1],), eps=eps)
    return F.rms_norm(x.float(), (x.shape[-1],), eps=eps).type_as(x)


def make_norm(kind: str, dim: int, eps: float | None = None) -> nn.Module:
    if kind == "rmsnorm":
        return RMSNorm(dim) if eps is None else RMSNorm(dim, eps)
    return nn.LayerNorm(dim, eps=1e-5 if eps is None else eps)


# ---- positions -------------------------------------------------------------------------------

def rope_tables(head_dim: int, max_len: int, theta: float) -> tuple[torch.Tensor, torch.Tensor]:
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(max_len, dtype=torch.float32), inv_freq)
    return angles.cos(), angles.sin()


def sinusoidal_table(max_len: int, dim: int) -> torch.Tensor:
    """The fixed sin/cos position encodings of "Attention is all you need" (max_len, dim)."""
    pos = torch.arange(max_len, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32) * (-math.log(10000.0) / dim))
    table = torch.zeros(max_len, dim)
    table[:, 0::2] = torch.sin(pos * freq)
    table[:, 1::2] = torch.cos(pos * freq[: dim // 2])
    return table


# ---- attention -------------------------------------------------------------------------------

def fused_linear(x: torch.Tensor, layers: tuple[nn.Module, ...]) -> torch.Tensor:
    """Several bias-free projections of the same input as one GEMM (nanoGPT's fused ``c_attn``):
    fewer, larger kernels, while the weights stay separately named parameters. Layers wrapped by
    LoRA run their own forward."""
    if all(type(m) is nn.Linear for m in layers):
        return F.linear(x, torch.cat([m.weight for m in layers]))
    return torch.cat([m(x) for m in layers], dim=-1)


class Attention(nn.Module):
    """Causal multi-head attention with n_kv_head <= n_head key/value heads (MHA, GQA, MQA).
    SDPA picks the flash/memory-efficient kernel on GPU; ``enable_gqa`` shares K/V heads without
    materialising repeated copies."""

    def __init__(self, d_model: int, n_head: int, n_kv_head: int, dropout: float, qk_norm: bool = False,
                 norm_eps: float | None = None):
        super().__init__()
        self.n_head, self.n_kv_head, self.head_dim = n_head, n_kv_head, d_model // n_head
        self.dropout = dropout
        kv_dim = n_kv_head * self.head_dim
        self.wq = nn.Linear(d_model, d_model, bias=False)
        self.wk = nn.Linear(d_model, kv_dim, bias=False)
        self.wv = nn.Linear(d_model, kv_dim, bias=False)
        self.wo = nn.Linear(d_model, d_model, bias=False)
        self.wo.residual_projection = True
        # QK-norm bounds the attention logits whatever the weights' scale, which is what lets
        # Muon and high learning rates train without logit blow-up (Qwen3's q_norm/k_norm layout).
        self.q_norm = make_norm("rmsnorm", self.head_dim, norm_eps) if qk_norm else None
        self.k_norm = make_norm("rmsnorm", self.head_dim, norm_eps) if qk_norm else None

    def qkv(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, (H + 2 Hkv) D): q, k and v side by side, from one GEMM."""
        return fused_linear(x, (self.wq, self.wk, self.wv))

    def heads(self, x: torch.Tensor, rope=None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """q (B, H, T, D) and k, v (B, Hkv, T, D): projected, normed and rotated."""
        B, T, _ = x.shape
        H, Hkv = self.n_head, self.n_kv_head
        # one RoPE pass (and one norm) over q and k together: fewer, larger kernels
        qkv = self.qkv(x).view(B, T, H + 2 * Hkv, self.head_dim)
        qk, v = qkv.split([H + Hkv, Hkv], dim=2)  # split, not slicing: one backward cat, no zero-filled buffers
        if self.q_norm is not None:
            qk = self._norm_qk(qk)
        if rope is not None:  # tables come as (T, D/2) or per row (B, 1, T, D/2); here heads are dim 2
            cos, sin = rope
            cos, sin = (cos[:, None], sin[:, None]) if cos.dim() == 2 else (cos.transpose(1, 2), sin.transpose(1, 2))
            qk = fused.rope(qk, cos, sin)
        q, k = qk.split([H, Hkv], dim=2)
        return q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)

    def _norm_qk(self, qk: torch.Tensor) -> torch.Tensor:
        """q_norm on the query heads and k_norm on the key heads of qk (B, T, H + Hkv, D), as one
        normalisation and one product with the gains laid out per head: two norms and a
        concatenation cost three more passes and a copy each way."""
        H, Hkv, D = self.n_head, self.n_kv_head, self.head_dim
        gains = torch.cat([self.q_norm.weight.expand(H, D), self.k_norm.weight.expand(Hkv, D)])
        return rms_normalize(qk, self.q_norm.eps) * gains

    def forward(self, x, rope=None, cache=None, attn_mask=None):
        B, T, C = x.shape
        q, k, v = self.heads(x, rope)
        if cache is not None:
            k, v = cache.update(k, v)
        S = k.shape[2]
        dropout = self.dropout if self.training else 0.0
        gqa = self.n_kv_head != self.n_head
        if attn_mask is None and T == S:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, dropout_p=dropout, enable_gqa=gqa)
        else:
            if attn_mask is None and T > 1:  # new tokens after a cached prefix: causal, offset by S - T
                attn_mask = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(diagonal=S - T)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout, enable_gqa=gqa)
        return self.wo(y.transpose(1, 2).reshape(B, T, C))

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor, rope=None) -> torch.Tensor:
        """(B, H, T, T) causal attention weights for input ``x``: what the forward pass attends with
        (SDPA never materialises them), for inspection and the external-attention providers."""
        q, k, _ = self.heads(x, rope)
        k = k.repeat_interleave(self.n_head // self.n_kv_head, dim=1)
        logits = (q.float() @ k.float().transpose(-1, -2)) / math.sqrt(self.head_dim)
        T = x.shape[1]
        causal = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        return logits.masked_fill(~causal, float("-inf")).softmax(-1)


# ---- MLPs ------------------------------------------------------------------------------------

class SwiGLU(nn.Module):
    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.w_gate = nn.Linear(d_model, d_ff, bias=False)
        self.w_up = nn.Linear(d_model, d_ff, bias=False)
        self.w_down = nn.Linear(d_ff, d_model, bias=False)
        self.w_down.residual_projection = True

    def gate_up(self, x: torch.Tensor) -> torch.Tensor:
        """gate and up side by side, from one GEMM (as the attention's q, k, v)."""
        return fused_linear(x, (self.w_gate, self.w_up))

    def forward(self, x):
        gate, up = self.gate_up(x).chunk(2, dim=-1)
        return self.w_down(F.silu(gate) * up)


class _UngatedMLP(nn.Module):
    """down(activation(up(x))): two matrices, an elementwise activation between them."""

    def __init__(self, d_model: int, d_ff: int):
        super().__init__()
        self.w_up = nn.Linear(d_model, d_ff, bias=False)
        self.w_down = nn.Linear(d_ff, d_model, bias=False)
        self.w_down.residual_projection = True

    def forward(self, x):
        return self.w_down(self.activation(self.w_up(x)))


class GeluMLP(_UngatedMLP):
    """GPT-2's MLP (tanh-approximated GELU)."""

    @staticmethod
    def activation(h):
        return F.gelu(h, approximate="tanh")


class ReLU2MLP(_UngatedMLP):
    """relu(h)^2: the NanoGPT speedrun's MLP. The FLOPs of GELU's and cheaper elementwise work than
    SwiGLU's silu-times-gate."""

    @staticmethod
    def activation(h):
        return fused.relu_squared(h)


MLP_CLASSES = {"swiglu": SwiGLU, "gelu": GeluMLP, "relu2": ReLU2MLP}


def make_mlp(kind: str, d_model: int, d_ff: int) -> nn.Module:
    return MLP_CLASSES[kind](d_model, d_ff)
