"""muP-style width scaling (ModelConfig.base_width): at two widths each parameter gets exactly the
init and rate the rules give, the tuning width is bit for bit the unscaled model, and the key is
validated."""
from __future__ import annotations

import math

import pytest
import torch

from lib.core.params import ParamsError, from_mapping
from lib.model.config import ModelConfig
from lib.model.gpt import GPT
from lib.train.optim import OptimParams, build_optimizer, param_roles
from lib.train.pretrain import PretrainParams

CPU = torch.device("cpu")


def model(d_model: int, base_width: int = 64, seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    cfg = dict(vocab_size=3000, n_layer=2, n_head=4, n_kv_head=4, d_model=d_model, d_ff=3 * d_model,
               max_seq_len=16, init_std=0.02, base_width=base_width)
    return GPT(ModelConfig(**{**cfg, **kw}))


def rates(m: GPT, p: OptimParams) -> dict[str, float]:
    """name -> peak rate of the group holding it."""
    opt = build_optimizer(m, p, CPU)
    by_id = {id(q): g["lr"] for g in opt.param_groups for q in g["params"]}
    return {n: by_id[id(q)] for n, q in m.named_parameters()}


@pytest.mark.parametrize("width", [64, 256])
def test_init_std_scales_as_one_over_sqrt_fan_in_for_hidden_matrices_only(width):
    m = model(width)
    mult = width / 64
    assert m.cfg.width_mult == mult
    hidden = torch.cat([m.blocks[i].attn.wq.weight.flatten() for i in range(2)]
                       + [m.blocks[i].mlp.w_up.weight.flatten() for i in range(2)])
    assert hidden.std().item() == pytest.approx(0.02 / math.sqrt(mult), rel=0.03)
    assert m.embed.weight.std().item() == pytest.approx(0.02, rel=0.03)  # embeddings: as tuned


def test_logits_carry_the_output_multiplier():
    wide = model(256)
    x = torch.randint(0, 3000, (2, 8), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        scaled = wide(x)[0]
        wide.cfg.base_width = 0  # the same weights without the multiplier
        plain = wide(x)[0]
    torch.testing.assert_close(scaled, plain / 4.0)


@pytest.mark.parametrize("tie", [True, False])
def test_adamw_rates_at_two_widths(tie):
    p = OptimParams(optimizer="adamw", lr=4e-3)
    for width, mult in ((64, 1.0), (256, 4.0)):
        m = model(width, tie_embeddings=tie)
        got = rates(m, p)
        roles = {n: r for r, ps in param_roles(m).items() for n, q in m.named_parameters()
                 if any(q is x for x in ps)}
        for name, lr in got.items():
            # hidden: muP's 1/width; embeddings, head, gains: sqrt(width), the measured rule (lib.train.optim)
            want = 4e-3 / mult if roles[name] == "hidden" else 4e-3 * math.sqrt(mult)
            assert lr == pytest.approx(want, rel=1e-12), (width, name)


def test_muon_rate_does_not_move_with_width_and_its_adamw_groups_grow_as_sqrt_width():
    p = OptimParams(optimizer="muon", lr=4e-3, muon_lr=0.02, embed_lr=6e-3)
    narrow, wide = rates(model(64), p), rates(model(256), p)  # width_mult 1 and 4
    hidden = [n for n in narrow if n.startswith("blocks.") and n.endswith("weight") and "norm" not in n]
    assert hidden and all(narrow[n] == wide[n] == 0.02 for n in hidden)  # Muon's shape adjustment is width-free
    assert narrow["embed.weight"] == 6e-3 and wide["embed.weight"] == pytest.approx(12e-3, rel=1e-12)
    gains = [n for n in narrow if "norm" in n]
    assert gains and all(narrow[n] == 4e-3 and wide[n] == pytest.approx(8e-3, rel=1e-12) for n in gains)


def test_at_the_base_width_the_model_and_optimizer_are_the_unscaled_ones():
    """base_width = d_model: the same init bits, the same groups, the same steps as base_width 0."""
    a, b = model(64, base_width=64), model(64, base_width=0)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    p = OptimParams(optimizer="adamw", lr=1e-2)
    oa, ob = build_optimizer(a, p, CPU), build_optimizer(b, p, CPU)
    assert [g["role"] for g in oa.param_groups] == [g["role"] for g in ob.param_groups] == ["matrices", "gain"]
    x = torch.randint(0, 3000, (2, 9), generator=torch.Generator().manual_seed(3))
    for m, o in ((a, oa), (b, ob)):
        for _ in range(3):
            m(x[:, :-1], x[:, 1:])[1].backward()
            o.step()
            o.zero_grad()
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_shipped_params_tune_at_the_shipped_width():
    from lib.core.params import load_section
    p = load_section("pretrain", PretrainParams)
    assert p.model.base_width == p.model.d_model and p.model.width_mult == 1.0


def test_base_width_is_validated():
    good = from_mapping(PretrainParams, {"model": {"d_model": 128, "base_width": 64}}, "params.yaml: pretrain")
    assert good.model.width_mult == 2.0
    with pytest.raises(ParamsError, match=r"pretrain\.model\.base_width: must be >= 0"):
        from_mapping(PretrainParams, {"model": {"base_width": -1}}, "params.yaml: pretrain")
    with pytest.raises(ParamsError, match=r"base_width"):
        from_mapping(PretrainParams, {"model": {"base_width": "wide"}}, "params.yaml: pretrain")
    assert ModelConfig().base_width == 0  # old config.json files (no key) load unscaled
