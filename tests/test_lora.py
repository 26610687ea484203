"""LoRA: starts equal to the base model, trains only the adapters, and merges into a plain model
whose logits equal the wrapped model's and which saves and loads in the one checkpoint format."""
from __future__ import annotations

import pytest
import torch

from tests.fixtures_tiny import tiny_model
from lib.model.checkpoint import load_model, save_model
from lib.model.lora import ALL_TARGETS, LoRALinear, LoRAParams, apply_lora, merge_lora
from lib.core.params import ParamsError, from_mapping

V = 64
IDS = torch.randint(0, V, (2, 12), generator=torch.Generator().manual_seed(0))


def logits(model) -> torch.Tensor:
    with torch.no_grad():
        return model.eval()(IDS)[0]


def test_wraps_targets_and_freezes_the_rest():
    model = tiny_model(V)
    before = logits(model)
    names = apply_lora(model, LoRAParams(enabled=True, rank=4, targets=["wq", "w_down"]))
    assert names == ["blocks.0.attn.wq", "blocks.0.mlp.w_down", "blocks.1.attn.wq", "blocks.1.mlp.w_down"]
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {f"{n}.lora_{x}" for n in names for x in "AB"}
    assert torch.equal(logits(model), before), "B starts at zero: the wrapped model is the base model"


def test_merged_logits_equal_wrapped_logits(tmp_path):
    model = tiny_model(V)
    base = logits(model)
    apply_lora(model, LoRAParams(enabled=True, rank=4, alpha=8.0, dropout=0.1, targets=list(ALL_TARGETS)))
    with torch.no_grad():  # what training would do: make B non-zero
        for m in model.modules():
            if isinstance(m, LoRALinear):
                m.lora_B.normal_(0, 0.2)
    wrapped = logits(model)
    assert not torch.allclose(wrapped, base, atol=1e-3)
    assert merge_lora(model) == 2 * len(ALL_TARGETS)
    assert not any(isinstance(m, LoRALinear) for m in model.modules())
    assert set(model.state_dict()) == set(tiny_model(V).state_dict())
    assert all(p.requires_grad for p in model.parameters())
    torch.testing.assert_close(logits(model), wrapped, rtol=1e-4, atol=1e-5)
    save_model(tmp_path / "m", model, "sha")
    torch.testing.assert_close(logits(load_model(tmp_path / "m")), wrapped, rtol=1e-4, atol=1e-5)


def test_training_moves_only_the_adapters():
    model = tiny_model(V)
    frozen = {k: v.clone() for k, v in model.state_dict().items()}
    apply_lora(model, LoRAParams(enabled=True, rank=2, dropout=0.0))
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    model.train()
    for _ in range(3):
        _, loss = model(IDS[:, :-1], IDS[:, 1:])
        loss.backward()
        opt.step()
        opt.zero_grad()
    after = model.state_dict()
    for key, value in frozen.items():
        wrapped_key = key.replace(".weight", ".base.weight") if key.split(".")[-2] in ("wq", "wk", "wv", "wo") else key
        assert torch.equal(after[wrapped_key], value), key
    assert any(m.lora_B.abs().sum() > 0 for m in model.modules() if isinstance(m, LoRALinear))


def test_params_validated():
    assert from_mapping(LoRAParams, {"enabled": True, "targets": ["wv"]}, "sft.lora").targets == ["wv"]
    with pytest.raises(ParamsError, match=r"sft.lora.targets: unknown module names \['w_q'\]"):
        from_mapping(LoRAParams, {"targets": ["w_q"]}, "params.yaml: sft.lora")
    with pytest.raises(ParamsError, match="rank"):
        from_mapping(LoRAParams, {"rank": 0}, "params.yaml: sft.lora")
