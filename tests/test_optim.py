"""Optimizer construction: parameter roles, AdamW unchanged by default, Muon for the hidden
matrices with AdamW for the rest, per-role rates under the schedule, and a saved state that
resumes to exactly the uninterrupted weights."""
from __future__ import annotations

import io

import pytest
import torch

from lib.core.errors import UserError
from lib.core.params import ParamsError, from_mapping
from lib.model.config import ModelConfig
from lib.model.gpt import GPT
from lib.train.muon import BatchedMuon
from lib.train.optim import MuonAdamW, OptimParams, build_optimizer, param_roles, set_lr

CPU = torch.device("cpu")


def tiny(**kw) -> GPT:
    torch.manual_seed(0)
    base = dict(vocab_size=40, n_layer=2, n_head=2, n_kv_head=2, d_model=16, d_ff=32, max_seq_len=12)
    return GPT(ModelConfig(**{**base, **kw}))


def batch(i: int):
    rows = (torch.randint(0, 40, (4, 1), generator=torch.Generator().manual_seed(i)) + torch.arange(9)) % 40
    return rows[:, :-1], rows[:, 1:]


def run(model, opt, steps, start=0):
    for i in range(start, start + steps):
        _, loss = model(*batch(i))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
    return loss.item()


def names(model, params):
    ids = {id(p) for p in params}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def test_roles_split_hidden_embed_head_gain():
    model = tiny(tie_embeddings=False, positions="learned", qk_norm=True)
    roles = {r: names(model, ps) for r, ps in param_roles(model).items()}
    assert roles["embed"] == {"embed.weight", "pos_embed.weight"} and roles["head"] == {"lm_head.weight"}
    assert "blocks.0.attn.wq.weight" in roles["hidden"] and "blocks.1.mlp.w_down.weight" in roles["hidden"]
    assert all(n.endswith("norm.weight") for n in roles["gain"]) and "blocks.0.attn.q_norm.weight" in roles["gain"]
    assert sum(map(len, roles.values())) == len(list(model.parameters()))
    tied = param_roles(tiny())
    assert not tied["head"] and len(tied["embed"]) == 1  # a tied head is the embedding


def test_default_adamw_is_the_original_two_groups_and_steps_identically():
    a, b = tiny(), tiny()
    opt = build_optimizer(a, OptimParams(lr=1e-2), CPU)
    assert isinstance(opt, torch.optim.AdamW) and [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    decay = [p for p in b.parameters() if p.dim() >= 2]
    rest = [p for p in b.parameters() if p.dim() < 2]
    ref = torch.optim.AdamW([{"params": decay, "weight_decay": 0.1}, {"params": rest, "weight_decay": 0.0}],
                            lr=1e-2, betas=(0.9, 0.95))
    run(a, opt, 3)
    run(b, ref, 3)
    for (name, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert torch.equal(pa, pb), name


def test_embed_and_head_rates_get_their_own_groups_and_follow_the_schedule():
    model = tiny(tie_embeddings=False)
    opt = build_optimizer(model, OptimParams(lr=1e-3, embed_lr=0.1, head_lr=0.01), CPU)
    rates = {g["role"]: g["lr"] for g in opt.param_groups}
    assert rates == {"hidden": 1e-3, "embed": 0.1, "head": 0.01, "gain": 1e-3}
    set_lr(opt, 0.5)
    assert {g["role"]: g["lr"] for g in opt.param_groups} == {"hidden": 5e-4, "embed": 0.05, "head": 0.005,
                                                              "gain": 5e-4}


def test_muon_takes_the_hidden_matrices_and_adamw_the_rest():
    model = tiny(tie_embeddings=False)
    opt = build_optimizer(model, OptimParams(optimizer="muon", muon_lr=0.05, lr=1e-2), CPU)
    assert isinstance(opt, MuonAdamW) and isinstance(opt.muon, torch.optim.Muon)
    muon_names = names(model, [p for g in opt.muon.param_groups for p in g["params"]])
    adam_names = names(model, [p for g in opt.adamw.param_groups for p in g["params"]])
    assert muon_names == names(model, param_roles(model)["hidden"]) and not muon_names & adam_names
    assert muon_names | adam_names == {n for n, _ in model.named_parameters()}
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    first = run(model, opt, 1)
    assert all(not torch.equal(before[n], p) for n, p in model.named_parameters()), "every parameter moves"
    assert run(model, opt, 20, start=1) < first - 0.3


def test_muon_update_is_orthogonalised():
    # One Muon step from zero momentum moves a matrix by lr * NS(grad): singular values near 1,
    # whatever the gradient's scale.
    w = torch.nn.Parameter(torch.zeros(16, 32))
    opt = BatchedMuon([w], lr=1.0, weight_decay=0.0, momentum=0.0, nesterov=False)
    w.grad = torch.randn(16, 32) * 1e-3
    opt.step()
    s = torch.linalg.svdvals(w.detach())
    assert 0.5 < s.min() and s.max() < 1.5


def _hidden_shapes():
    """Matrices of three shapes (square, wide, tall; several of each) with fixed gradients."""
    torch.manual_seed(3)
    shapes = [(24, 24)] * 3 + [(24, 64)] * 2 + [(64, 24)] * 2 + [(8, 40)]
    return [torch.nn.Parameter(torch.randn(*s) * 0.1) for s in shapes]


@pytest.mark.parametrize("nesterov,decay", [(True, 0.0), (True, 0.1), (False, 0.01)])
def test_batched_muon_matches_torch_muon(nesterov, decay):
    """Same maths as torch.optim.Muon, to bf16 rounding, over steps with momentum and decay; the
    state is the same too, so either loads the other's."""
    ours, theirs = _hidden_shapes(), _hidden_shapes()
    kw = dict(lr=0.02, weight_decay=decay, momentum=0.95, nesterov=nesterov)
    a, b = BatchedMuon(ours, **kw), torch.optim.Muon(theirs, **kw)
    start = [p.detach().clone() for p in ours]
    for i in range(6):
        g = torch.Generator().manual_seed(i)
        for p, q in zip(ours, theirs):
            p.grad = torch.randn(p.shape, generator=g)
            q.grad = p.grad.clone()
        a.step()
        b.step()
    for p, q, s in zip(ours, theirs, start):
        moved = (q.detach() - s).norm()
        assert (p.detach() - q.detach()).norm() < 0.01 * moved  # bf16 rounding at most (0 on our CPU)
    b.load_state_dict(_roundtrip(a.state_dict()))
    assert all(torch.equal(a.state[p]["momentum_buffer"], b.state[q]["momentum_buffer"]) for p, q in zip(ours, theirs))


def _roundtrip(state: dict) -> dict:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)  # the loop loads training state this way


@pytest.mark.parametrize("kind", ["muon", "adamw"])
def test_saved_state_resumes_to_the_uninterrupted_weights(kind):
    p = OptimParams(optimizer=kind, lr=1e-2, muon_lr=0.05, embed_lr=0.03)
    ref = tiny(mlp="relu2", qk_norm=True)
    ref_opt = build_optimizer(ref, p, CPU)
    run(ref, ref_opt, 8)

    first = tiny(mlp="relu2", qk_norm=True)
    opt = build_optimizer(first, p, CPU)
    run(first, opt, 5)
    saved = _roundtrip({"model": first.state_dict(), "optimizer": opt.state_dict()})
    resumed = tiny(mlp="relu2", qk_norm=True)
    resumed.load_state_dict(saved["model"])
    opt2 = build_optimizer(resumed, p, CPU)
    opt2.load_state_dict(saved["optimizer"])
    run(resumed, opt2, 3, start=5)
    for (name, a), b in zip(ref.named_parameters(), resumed.parameters()):
        assert torch.equal(a, b), name


def test_adamw_state_does_not_load_into_muon():
    model = tiny()
    adam = build_optimizer(model, OptimParams(), CPU)
    muon = build_optimizer(model, OptimParams(optimizer="muon"), CPU)
    with pytest.raises(ValueError, match="Muon"):
        muon.load_state_dict(adam.state_dict())


def test_bad_optimizer_params_name_the_key_and_fsdp_muon_is_refused():
    for bad, key in [({"optimizer": "sgd"}, "optimizer"), ({"embed_lr": 0.0}, "embed_lr"),
                     ({"muon_momentum": 1.0}, "muon_momentum")]:
        with pytest.raises(ParamsError, match=rf"pretrain.{key}"):
            from_mapping(OptimParams, bad, "params.yaml: pretrain")
    with pytest.raises(UserError, match="fsdp"):
        build_optimizer(tiny(), OptimParams(optimizer="muon"), CPU, fsdp=True)
