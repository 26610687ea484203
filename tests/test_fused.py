"""lib.model.fused: each hand-written backward against autograd through the plain formula."""
from __future__ import annotations

import pytest
import torch

from lib.model import fused
from lib.model.layers import rope_tables


def _plain_rope(x, cos, sin):
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


CASES = {
    # x (B, T, H, D) against tables (T, 1, D/2); a non-contiguous slice as attention passes it
    "rope": (lambda x: fused.rope(x, *_tables(x)), lambda x: _plain_rope(x, *_tables(x)), (2, 7, 5, 16)),
    "softcap": (lambda x: fused.softcap(x, 3.0), lambda x: 3.0 * torch.tanh(x / 3.0), (4, 9, 33)),
    "relu2": (fused.relu_squared, lambda x: torch.relu(x).square(), (3, 8, 40)),
}


def _tables(x):
    cos, sin = rope_tables(x.shape[-1], x.shape[1], 10000.0)
    return cos[:, None], sin[:, None]


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_value_and_gradient_equal_the_plain_formula(name, layout):
    fn, plain, shape = CASES[name]
    g = torch.Generator().manual_seed(0)
    base = torch.randn(*shape[:-1], shape[-1] * 2, generator=g, dtype=torch.float64) * 4
    x = base[..., :shape[-1]] if layout == "strided" else base[..., :shape[-1]].contiguous()
    a = x.clone().requires_grad_(True) if layout == "contiguous" else base.clone().requires_grad_(True)
    b = a.detach().clone().requires_grad_(True)
    pick = (lambda t: t[..., :shape[-1]]) if layout == "strided" else (lambda t: t)
    out_fused, out_plain = fn(pick(a)), plain(pick(b))
    torch.testing.assert_close(out_fused, out_plain)
    weight = torch.randn(out_plain.shape, generator=g, dtype=torch.float64)
    (out_fused * weight).sum().backward()
    (out_plain * weight).sum().backward()
    torch.testing.assert_close(a.grad, b.grad)


@pytest.mark.parametrize("name", sorted(CASES))
def test_gradcheck(name):
    fn, _, shape = CASES[name]
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (x,))


def test_rope_is_a_rotation_and_position_zero_is_the_identity():
    x = torch.randn(1, 6, 2, 8)
    cos, sin = _tables(x)
    y = fused.rope(x, cos, sin)
    torch.testing.assert_close(y[:, 0], x[:, 0])
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))  # a rotation keeps each head's length


def test_compiled_path_matches_eager(monkeypatch):
    x = torch.randn(2, 5, 3, 8)
    eager = [fused.rope(x, *_tables(x)), fused.softcap(x, 2.0), fused.relu_squared(x)]
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    plain = [fused.rope(x, *_tables(x)), fused.softcap(x, 2.0), fused.relu_squared(x)]
    for a, b in zip(eager, plain):
        torch.testing.assert_close(a, b)


def test_bench_fused_ops_times_equal_computations():
    """bench/bench_fused_ops.py compares each fused op with a plain formula that computes the same
    values and gradients, on the layouts the model uses (RoPE on a strided q/k view)."""
    from bench.bench_fused_ops import cases
    for name, (fused_op, plain_op, make, view) in cases(dict(batch=2, seq=8, d_model=16, n_head=2, vocab=32)).items():
        a, b = make().clone().requires_grad_(True), make().clone().requires_grad_(True)
        out_a, out_b = fused_op(view(a)), plain_op(view(b))
        torch.testing.assert_close(out_a, out_b, msg=name)
        weight = torch.randn(out_a.shape)
        (out_a * weight).sum().backward()
        (out_b * weight).sum().backward()
        torch.testing.assert_close(a.grad, b.grad, msg=name)
