"""The checkpoint format: safetensors weights + config.json round trip for every variant, tied
weights stored once, no NaN checkpoints, the best + final layout of models/pretrain, and the
training state loaded with weights_only=True."""
from __future__ import annotations

import json

import pytest
import torch

from lib.model.checkpoint import load_model, load_state, save_model, save_state
from lib.core.errors import UserError
from lib.model.config import ModelConfig
from lib.model.gpt import GPT
from lib.model.checkpoint import save_best_and_final
from lib.train.pretrain import PretrainParams
from lib.core.params import ParamsError, from_mapping


def tiny(**kw) -> GPT:
    torch.manual_seed(0)
    return GPT(ModelConfig(vocab_size=40, n_layer=1, n_head=2, n_kv_head=2, d_model=16, d_ff=32, max_seq_len=12, **kw))


@pytest.mark.parametrize("kw", [{}, {"positions": "learned", "norm": "layernorm", "mlp": "gelu",
                                     "tie_embeddings": False}])
def test_save_and_load_round_trip(tmp_path, kw):
    model = tiny(**kw)
    save_model(tmp_path / "m", model, "tok-sha", {"stage": "test"})
    meta = json.loads((tmp_path / "m" / "config.json").read_text())
    assert meta["model"]["positions"] == model.cfg.positions and meta["tokenizer_sha256"] == "tok-sha"
    loaded = load_model(tmp_path / "m", tokenizer_sha256="tok-sha")
    x = torch.randint(0, 40, (2, 8))
    torch.testing.assert_close(loaded.eval()(x)[0], model.eval()(x)[0], atol=0, rtol=0)
    with pytest.raises(UserError, match="different tokenizer"):
        load_model(tmp_path / "m", tokenizer_sha256="other")


def test_tied_embedding_is_stored_once(tmp_path):
    from safetensors.torch import load_file
    save_model(tmp_path / "m", tiny(), "t")
    assert "lm_head.weight" not in load_file(str(tmp_path / "m" / "model.safetensors"))


def test_non_finite_weights_are_never_saved(tmp_path):
    model = tiny()
    with torch.no_grad():
        model.norm.weight[0] = float("nan")
    with pytest.raises(RuntimeError, match="non-finite"):
        save_model(tmp_path / "m", model, "t")
    assert not (tmp_path / "m").exists()


def test_pretrain_output_holds_best_at_the_top_and_final_below(tmp_path):
    best, final = tiny(), tiny()
    with torch.no_grad():
        final.norm.weight.fill_(2.0)
    save_best_and_final(tmp_path / "out", best.cfg, best.state_dict(), final.state_dict(), "t", {"best_step": 3})
    assert torch.equal(load_model(tmp_path / "out").norm.weight, best.norm.weight)
    assert torch.equal(load_model(tmp_path / "out" / "final").norm.weight, final.norm.weight)
    assert json.loads((tmp_path / "out" / "config.json").read_text())["weights"] == "best"


def test_state_is_loaded_with_weights_only(tmp_path):
    save_state(tmp_path / "s.pt", {"step": 3, "t": torch.ones(2), "rng": [torch.get_rng_state()]})
    assert load_state(tmp_path / "s.pt")["step"] == 3
    assert load_state(tmp_path / "missing.pt") is None
    torch.save({"evil": object()}, tmp_path / "bad.pt")  # arbitrary pickles are refused
    with pytest.raises(Exception):
        load_state(tmp_path / "bad.pt")


def test_pretrain_params_validate_and_compute_accumulation():
    params = from_mapping(PretrainParams, {"batch_size": 4, "seq_len": 32, "tokens_per_step": 512}, "p: pretrain")
    assert params.accum_steps(1) == 4 and params.accum_steps(2) == 2
    with pytest.raises(UserError, match="tokens_per_step"):
        params.accum_steps(3)
    with pytest.raises(ParamsError, match="pretrain.parallel"):
        from_mapping(PretrainParams, {"parallel": "tp"}, "p: pretrain")
    with pytest.raises(ParamsError, match="pretrain.seq_len"):
        from_mapping(PretrainParams, {"seq_len": 4096}, "p: pretrain")
