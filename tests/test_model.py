"""The model: every variant trains, the KV cache matches the full forward pass, padded batches
match unpadded rows, the FLOPs formula matches the weights it counts, configs validate."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn

from lib.model.config import ModelConfig
from lib.model.gpt import GPT, KVCache, padded_causal_mask
from lib.core.params import ParamsError, from_mapping

VARIANTS = {
    "default": {},
    "gqa": {"n_kv_head": 2},
    "mqa": {"n_kv_head": 1},
    "learned_layernorm_gelu": {"positions": "learned", "norm": "layernorm", "mlp": "gelu"},
    "sinusoidal": {"positions": "sinusoidal"},
    "nope_untied": {"positions": "none", "tie_embeddings": False},
    "rope_theta_dropout": {"rope_theta": 500000.0, "dropout": 0.1},
    "residual_dropout_only": {"dropout": 0.1, "attn_dropout": 0.0},
    "qk_norm": {"qk_norm": True},
    "relu2": {"mlp": "relu2"},
    "softcap": {"logit_softcap": 3.0},
    "zero_init_gqa": {"zero_init_proj": True, "n_kv_head": 2},
    "recipe": {"qk_norm": True, "mlp": "relu2", "zero_init_proj": True, "logit_softcap": 15.0,
               "tie_embeddings": False},
}


def tiny(**kw) -> GPT:
    torch.manual_seed(0)
    base = dict(vocab_size=48, n_layer=2, n_head=4, n_kv_head=4, d_model=32, d_ff=64, max_seq_len=24)
    return GPT(ModelConfig(**{**base, **kw}))


@pytest.mark.parametrize("name", VARIANTS)
def test_every_variant_trains_a_step_and_the_loss_falls(name):
    model = tiny(**VARIANTS[name])
    x = torch.randint(0, 48, (4, 16), generator=torch.Generator().manual_seed(1))
    y = torch.roll(x, -1, dims=1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        model.train()
        _, loss = model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 0.1, losses


@pytest.mark.parametrize("name", VARIANTS)
def test_kv_cache_prefill_then_one_token_a_step_equals_full_forward(name):
    model = tiny(**VARIANTS[name]).eval()
    x = torch.randint(0, 48, (2, 20))
    with torch.no_grad():
        full, _ = model(x)
        caches = [KVCache() for _ in model.blocks]
        pieces = [model(x[:, :9], caches=caches)[0]]
        for t in range(9, 20):
            pieces.append(model(x[:, t:t + 1], caches=caches, start_pos=t)[0])
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("name", ["default", "learned_layernorm_gelu"])
def test_left_padded_row_with_positions_and_mask_equals_the_row_alone(name):
    model = tiny(**VARIANTS[name]).eval()
    short, long = torch.randint(0, 48, (1, 6)), torch.randint(0, 48, (1, 10))
    pad = 4
    idx = torch.cat([torch.cat([torch.zeros(1, pad, dtype=torch.long), short], 1), long])
    valid = idx.new_ones(idx.shape, dtype=torch.bool)
    valid[0, :pad] = False
    positions = (valid.long().cumsum(1) - 1).clamp(min=0)
    with torch.no_grad():
        batched, _ = model(idx, positions=positions, attn_mask=padded_causal_mask(valid))
        alone, _ = model(short)
        alone_long, _ = model(long)
    assert torch.isfinite(batched).all()  # padding queries attend to themselves, never to nothing
    torch.testing.assert_close(batched[0, pad:], alone[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched[1], alone_long[0], atol=1e-5, rtol=1e-5)


def test_default_parameter_names_are_the_exporters_contract():
    names = set(tiny().state_dict())
    expected = {"embed.weight", "norm.weight", "lm_head.weight"} | {
        f"blocks.{i}.{n}" for i in range(2) for n in (
            "attn.wq.weight", "attn.wk.weight", "attn.wv.weight", "attn.wo.weight", "attn_norm.weight",
            "mlp.w_gate.weight", "mlp.w_up.weight", "mlp.w_down.weight", "mlp_norm.weight")}
    assert names == expected


def test_flops_per_token_is_six_times_the_matmul_weights_plus_attention():
    for kw in ({}, {"mlp": "gelu", "n_kv_head": 1, "tie_embeddings": False}):
        model = tiny(**kw)
        matmul = sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))
        assert model.flops_per_token(16) == 6 * matmul + 12 * 2 * 32 * 16


def test_residual_projections_get_the_scaled_init():
    model = GPT(ModelConfig(vocab_size=256, n_layer=8, d_model=256, n_head=4, n_kv_head=4, d_ff=512))
    std_q = model.blocks[0].attn.wq.weight.std().item()
    std_o = model.blocks[0].attn.wo.weight.std().item()
    assert abs(std_q - 0.02) < 0.002 and abs(std_o - 0.02 / 4) < 0.0005


def test_old_config_json_without_new_fields_builds_the_original_model():
    old = {"n_layer": 2, "n_head": 4, "n_kv_head": 4, "d_model": 32, "d_ff": 64, "max_seq_len": 24,
           "rope_theta": 10000.0, "dropout": 0.0, "tie_embeddings": True, "vocab_size": 48}
    cfg = ModelConfig(**old)
    assert (cfg.positions, cfg.norm, cfg.mlp) == ("rope", "rmsnorm", "swiglu")
    assert (cfg.qk_norm, cfg.zero_init_proj, cfg.logit_softcap) == (False, False, 0.0)


@pytest.mark.parametrize("bad, key", [({"positions": "alibi"}, "positions"), ({"n_kv_head": 3}, "n_kv_head"),
                                      ({"norm": "batchnorm"}, "norm"), ({"dropout": 1.0}, "dropout"),
                                      ({"mlp": "relu3"}, "mlp"), ({"logit_softcap": -1.0}, "logit_softcap")])
def test_bad_model_params_name_the_key(bad, key):
    with pytest.raises(ParamsError, match=rf"pretrain.model.{key}"):
        from_mapping(ModelConfig, bad, "params.yaml: pretrain.model")


def test_too_long_input_is_refused():
    with pytest.raises(ValueError, match="max_seq_len"):
        tiny()(torch.zeros(1, 25, dtype=torch.long))


def test_model_traces_as_one_graph_for_torch_compile():
    """No graph breaks: `compile: true` gets one fused graph per forward (dynamo only; no C++ build)."""
    model = tiny(n_kv_head=2, dropout=0.1)
    x = torch.randint(0, 48, (2, 16))
    _, loss = torch.compile(model, backend="eager", fullgraph=True)(x, torch.roll(x, -1, 1))
    loss.backward()
    assert model.embed.weight.grad is not None


def test_recipe_parameter_names_and_shapes():
    model = tiny(qk_norm=True, mlp="relu2", tie_embeddings=False)
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert shapes["blocks.0.attn.q_norm.weight"] == shapes["blocks.0.attn.k_norm.weight"] == (8,)  # head_dim
    assert shapes["blocks.1.mlp.w_up.weight"] == (64, 32) and shapes["blocks.1.mlp.w_down.weight"] == (32, 64)
    assert "blocks.0.mlp.w_gate.weight" not in shapes
    assert model.lm_head.weight is not model.embed.weight


def test_zero_init_proj_makes_every_block_the_identity_at_init():
    model = tiny(zero_init_proj=True).eval()
    for block in model.blocks:
        assert not block.attn.wo.weight.any() and not block.mlp.w_down.weight.any()
        assert block.attn.wq.weight.std() > 0.01
    x = torch.randint(0, 48, (1, 8))
    h = model.embed(x)
    with torch.no_grad():
        assert torch.equal(model.blocks[0](h, (model.rope_cos[:8], model.rope_sin[:8])), h)


def test_logit_softcap_bounds_the_logits_and_is_tanh():
    capped, plain = tiny(logit_softcap=2.0).eval(), tiny().eval()
    with torch.no_grad():
        for p in list(capped.parameters()) + list(plain.parameters()):
            p.mul_(4.0)  # large weights: raw logits far beyond the cap
        x = torch.randint(0, 48, (2, 10))
        a, b = capped(x)[0], plain(x)[0]
    assert b.abs().max() > 2.0 and a.abs().max() < 2.0
    torch.testing.assert_close(a, 2.0 * torch.tanh(b / 2.0))


def test_qk_norm_normalises_each_head_before_rope():
    model = tiny(qk_norm=True).eval()
    attn = model.blocks[0].attn
    with torch.no_grad():
        attn.q_norm.weight.fill_(2.0)
        attn.k_norm.weight.uniform_(0.5, 1.5)
        h = torch.randn(1, 6, model.cfg.d_model)
        q, k, _ = attn.heads(h, rope=None)  # (B, H, T, D)
        rms = q.pow(2).mean(-1).sqrt()  # per head and position; RoPE would keep it (a rotation)
        torch.testing.assert_close(rms, torch.full_like(rms, 2.0), atol=1e-3, rtol=1e-3)
        # each head type with its own module: the one-pass layout equals the two norms applied apart
        raw_k = attn.wk(h).view(1, 6, attn.n_kv_head, attn.head_dim)
        torch.testing.assert_close(k, attn.k_norm(raw_k).transpose(1, 2))


def test_preallocated_cache_equals_growing_cache_and_never_reallocates():
    model = tiny().eval()
    x = torch.randint(0, 48, (2, 20))
    with torch.no_grad():
        outs = []
        for cap in (None, 20):
            caches = [KVCache(cap) for _ in model.blocks]
            pieces = [model(x[:, :3], caches=caches)[0]]
            buf = caches[0]._k
            for t in range(3, 20):
                pieces.append(model(x[:, t:t + 1], caches=caches, start_pos=t)[0])
            outs.append(torch.cat(pieces, 1))
            if cap:
                assert caches[0]._k is buf and caches[0].length == 20
    torch.testing.assert_close(outs[0], outs[1], atol=0, rtol=0)


def test_inference_qkv_weight_copy_follows_weight_updates():
    model = tiny().eval()
    x = torch.randint(0, 48, (1, 6))
    with torch.no_grad():
        before = model(x)[0]
        model.blocks[0].attn.wk.weight.mul_(3.0)  # in place, as an optimizer step is
        after = model(x)[0]
    with torch.enable_grad():
        reference = model(x)[0].detach()  # the training path concatenates afresh
    assert not torch.allclose(before, after)
    torch.testing.assert_close(after, reference, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("qk_norm", [False, True])
def test_attention_probabilities_are_what_the_forward_pass_attends_with(qk_norm):
    """``Attention.probabilities`` (the providers' view) times the values gives the layer's output,
    with GQA, RoPE and QK-norm: one copy of the attention maths."""
    torch.manual_seed(0)
    model = GPT(ModelConfig(vocab_size=50, n_layer=1, n_head=4, n_kv_head=2, d_model=32, d_ff=64,
                            max_seq_len=16, qk_norm=qk_norm)).eval()
    attn, x = model.blocks[0].attn, torch.randn(2, 7, 32)
    rope = (model.rope_cos[:7], model.rope_sin[:7])
    probs = attn.probabilities(x, rope)
    _, _, v = attn.heads(x, rope)
    y = probs @ v.repeat_interleave(2, dim=1)
    expected = attn.wo(y.transpose(1, 2).reshape(2, 7, 32))
    with torch.no_grad():
        torch.testing.assert_close(attn(x, rope), expected, atol=1e-5, rtol=1e-4)


def test_decode_projection_keeps_one_transposed_copy_until_a_weight_changes():
    from lib.infer.prepare import DecodeProjection, prepare_for_decode, release_decode
    model = GPT(ModelConfig(vocab_size=64, n_layer=1, n_head=2, n_kv_head=1, d_model=16, d_ff=24, max_seq_len=16))
    attn, x = model.blocks[0].attn, torch.randn(1, 1, 16)
    with torch.no_grad():
        plain = model(torch.tensor([[3, 4, 5]]))[0]
        expected = torch.cat([attn.wq(x), attn.wk(x), attn.wv(x)], dim=-1)
        prepare_for_decode(model)
        proj = attn.qkv
        assert isinstance(proj, DecodeProjection) and proj.weight_t is None  # made at first use, not before
        torch.testing.assert_close(attn.qkv(x), expected)
        copy = proj.weight_t
        assert copy.shape == (16, 32)
        attn.qkv(x)
        assert proj.weight_t is copy  # no new copy per token
        attn.wk.weight.mul_(2.0)
        torch.testing.assert_close(attn.qkv(x), torch.cat([attn.wq(x), attn.wk(x), attn.wv(x)], dim=-1))
        assert proj.weight_t is not copy
        attn.wk.weight.div_(2.0)
        many = torch.randn(4, 16, 16)  # prefill-sized: the weights as they are, no copy kept
        head = model.lm_head.forward
        torch.testing.assert_close(model.lm_head(many), many @ model.embed.weight.t())
        assert head.weight_t is None
        torch.testing.assert_close(model(torch.tensor([[3, 4, 5]]))[0], plain)
        prepare_for_decode(model)
        assert attn.qkv is proj  # a second call keeps what is there
    with torch.enable_grad():
        assert attn.qkv(x).requires_grad and model.lm_head(x).requires_grad  # training never takes the copy
    release_decode(model)
    assert "qkv" not in attn.__dict__ and "forward" not in model.lm_head.__dict__
    assert set(model.state_dict()) == set(GPT(model.cfg).state_dict())
