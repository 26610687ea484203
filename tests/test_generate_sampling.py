"""Each sampling mode's invariants, checked on batches of random logits."""
from __future__ import annotations

import pytest
import torch

from lib.infer.sampling import (SamplingParams, apply_repetition_penalty, next_token_probs, sample, top_k_filter,
                          top_p_filter)

V = 50


def logits(rows: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.randn(rows, V, generator=torch.Generator().manual_seed(seed)) * 3


def gens(n: int, seed: int = 0) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(seed + i) for i in range(n)]


def draws(x: torch.Tensor, params: SamplingParams, n: int = 200) -> torch.Tensor:
    g = gens(x.shape[0])
    return torch.stack([sample(x, params, g) for _ in range(n)], dim=1)  # (B, n)


def test_greedy_equals_argmax():
    x = logits()
    assert torch.equal(sample(x, SamplingParams(), gens(8)), x.argmax(-1))
    # top-k / top-p do not change greedy
    assert torch.equal(sample(x, SamplingParams(top_k=3, top_p=0.5), gens(8)), x.argmax(-1))


@pytest.mark.parametrize("k", [1, 3, 10])
def test_top_k_never_leaves_the_top_k(k):
    x = logits()
    kept = torch.isfinite(top_k_filter(x, k))
    assert (kept.sum(-1) == k).all()
    top = x.topk(k, dim=-1).indices
    got = draws(x, SamplingParams(temperature=2.0, top_k=k))
    for row in range(x.shape[0]):
        assert set(got[row].tolist()) <= set(top[row].tolist())
    if k > 1:  # and does sample more than one of them at a high temperature
        assert any(len(set(got[row].tolist())) > 1 for row in range(x.shape[0]))


@pytest.mark.parametrize("p", [0.1, 0.5, 0.9])
def test_top_p_keeps_the_smallest_set_over_p(p):
    x = logits()
    probs = x.softmax(-1)
    kept = torch.isfinite(top_p_filter(x, p))
    for row in range(x.shape[0]):
        inside = probs[row][kept[row]]
        outside = probs[row][~kept[row]]
        assert inside.sum() >= p - 1e-6, "the kept set reaches p"
        assert inside.sum() - inside.min() < p, "dropping its least likely token falls below p: smallest"
        assert outside.numel() == 0 or inside.min() >= outside.max(), "it is made of the most likely tokens"
    got = draws(x, SamplingParams(temperature=1.0, top_p=p))
    assert torch.gather(kept, 1, got).all()


def test_sampled_distribution_follows_the_probabilities():
    x = torch.tensor([[2.0, 1.0, 0.0, -30.0]])
    params = SamplingParams(temperature=1.0)
    got = draws(x, params, n=4000)[0]
    freq = torch.bincount(got, minlength=4).float() / got.numel()
    assert torch.allclose(freq, next_token_probs(x, params)[0], atol=0.03)
    assert freq[3] == 0


def test_temperature_sharpens_and_flattens():
    x = logits(1)
    cold = next_token_probs(x, SamplingParams(temperature=0.2))
    hot = next_token_probs(x, SamplingParams(temperature=5.0))
    assert cold.max() > x.softmax(-1).max() > hot.max()


def test_zero_probability_tokens_are_never_drawn():
    x = torch.full((4, V), float("-inf"))
    x[:, 7] = 0.0
    x[1, 0] = 0.0  # two candidates in row 1, including the very first index
    got = draws(x, SamplingParams(temperature=1.0), n=100)
    assert (got[[0, 2, 3]] == 7).all() and set(got[1].tolist()) <= {0, 7}


def test_repetition_penalty_lowers_seen_tokens_only():
    x = torch.tensor([[2.0, -2.0, 1.0, 0.5]])
    seen = torch.tensor([[True, True, False, False]])
    out = apply_repetition_penalty(x, seen, 4.0)
    assert out.tolist() == [[0.5, -8.0, 1.0, 0.5]]
    # greedy would pick 0 without the penalty, 2 with it
    assert int(sample(x, SamplingParams(repetition_penalty=4.0), gens(1), seen)) == 2


def test_seeded():
    x = logits()
    params = SamplingParams(temperature=1.0, top_p=0.95)
    assert torch.equal(draws(x, params), draws(x, params))
    other = torch.stack([sample(x, params, gens(8, seed=100)) for _ in range(50)], dim=1)
    assert not torch.equal(draws(x, params, n=50), other)


def test_params_validated():
    for bad in ({"temperature": -1.0}, {"top_k": -1}, {"top_p": 0.0}, {"top_p": 1.5}, {"repetition_penalty": 0.0}):
        with pytest.raises(ValueError):
            SamplingParams(**bad)
