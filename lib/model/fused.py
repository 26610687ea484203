"""Elementwise work around the matmuls with hand-written backward passes: rotary embeddings,
logit soft-capping and the ReLU² activation.

In eager mode autograd records every small op of these formulas and replays each one's
backward: RoPE's six products, sums and concatenation become a dozen passes plus a zero-filled
buffer per half, and the soft-cap keeps three (batch x seq x vocab) intermediates. Each function here
saves only what its derivative needs and computes it in two or three passes:

* a rotation's derivative is the rotation by the opposite angle (the same formula with the
  sine negated), so RoPE's backward costs what its forward does and saves nothing but the
  tables;
* ``cap * tanh(z / cap)`` has derivative ``1 - (out / cap)^2``, computed from the output;
* ``relu(h)^2`` has derivative ``2 relu(h)``, one product from the saved relu.

Under ``torch.compile`` the plain formulas are used instead: inductor fuses them itself.
The results equal the plain formulas to rounding (tests/test_fused.py checks values and
gradients against autograd through the plain ops). ``bench/bench_fused_ops.py`` times each, forward
plus backward, against its plain formula: one that no longer pays should go.
"""
from __future__ import annotations

import torch


def _needs_grad(x: torch.Tensor) -> bool:
    # Without a gradient to compute, skip the autograd Function: its bookkeeping is a real share
    # of a one-token decoding step.
    return torch.is_grad_enabled() and x.requires_grad


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, sign: float) -> torch.Tensor:
    """(x1 cos - sign x2 sin, x2 cos + sign x1 sin) for x = (x1, x2) split in halves, written
    straight into the two halves of one output: no concatenation, two passes per half."""
    x1, x2 = x.chunk(2, dim=-1)
    out = torch.empty(x.shape, dtype=x.dtype, device=x.device)
    o1, o2 = out.chunk(2, dim=-1)
    torch.mul(x1, cos, out=o1).addcmul_(x2, sin, value=-sign)
    torch.mul(x2, cos, out=o2).addcmul_(x1, sin, value=sign)
    return out


class _Rope(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, cos, sin):
        ctx.save_for_backward(cos, sin)
        return _rotate(x, cos, sin, 1.0)

    @staticmethod
    def backward(ctx, grad):
        cos, sin = ctx.saved_tensors
        return _rotate(grad, cos, sin, -1.0), None, None


def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate pairs (x[..., :d/2], x[..., d/2:]) by position-dependent angles; the half-width
    ``cos``/``sin`` broadcast against x[..., :d/2] (e.g. x (B, T, H, D) with tables (T, 1, D/2))."""
    # rotate in fp32 under bf16 autocast too: positions far apart differ by small angles
    xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    cos, sin = cos.to(xf.dtype), sin.to(xf.dtype)
    if torch.compiler.is_compiling():
        x1, x2 = xf.chunk(2, dim=-1)
        out = torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)
    else:
        out = _Rope.apply(xf, cos, sin) if _needs_grad(xf) else _rotate(xf, cos, sin, 1.0)
    return out.type_as(x)


def _capped(logits: torch.Tensor, cap: float) -> torch.Tensor:
    return torch.div(logits, cap).tanh_().mul_(cap)  # one new tensor, three passes


class _SoftCap(torch.autograd.Function):
    @staticmethod
    def forward(ctx, logits, cap):
        out = _capped(logits, cap)
        ctx.save_for_backward(out)
        ctx.cap = cap
        return out

    @staticmethod
    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        # d/dz cap * tanh(z / cap) = 1 - tanh^2 = 1 - (out / cap)^2
        return torch.addcmul(grad, grad * out, out, value=-1.0 / ctx.cap ** 2), None


def softcap(logits: torch.Tensor, cap: float) -> torch.Tensor:
    """cap * tanh(logits / cap): logits bounded in (-cap, cap)."""
    if torch.compiler.is_compiling():
        return torch.tanh(logits / cap) * cap
    return _SoftCap.apply(logits, cap) if _needs_grad(logits) else _capped(logits, cap)


class _ReLU2(torch.autograd.Function):
    @staticmethod
    def forward(ctx, h):
        r = torch.relu(h)
        ctx.save_for_backward(r)
        return r * r

    @staticmethod
    def backward(ctx, grad):
        (r,) = ctx.saved_tensors
        return torch.mul(r, grad).mul_(2.0)  # d/dh relu(h)^2 = 2 relu(h): zero where h < 0


def relu_squared(h: torch.Tensor) -> torch.Tensor:
    """relu(h)^2, with a backward of one product from the saved relu(h)."""
    if torch.compiler.is_compiling() or not _needs_grad(h):
        return torch.relu(h).square()
    return _ReLU2.apply(h)
