"""A new schedule, optimizer, document format or clean counter is one entry in its registry: each
test registers a toy one (for this test only) and runs it through the real code paths, with
nothing else edited."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lib.core.params import ParamsError, from_mapping
from lib.eval.validation import mean_loss
from lib.model.config import ModelConfig
from lib.model.gpt import GPT
from lib.train import optim, schedule
from lib.train.loop import finish, train
from lib.train.params import RunPlan, TrainParams

VOCAB = 40


def step_decay(done: float, lr: float, min_lr: float) -> float:
    """A toy schedule: the peak for the first half of the decay, the floor after."""
    return lr if done < 0.5 else min_lr


def sgd(roles: optim.Roles, p: optim.OptimParams, target: optim.Target):
    """A toy optimizer: plain SGD over the usual role groups; no initial_lr bookkeeping here."""
    return torch.optim.SGD(optim.role_groups(roles, p), lr=p.lr)


def test_a_registered_schedule_loads_from_params_and_drives_lr_at(monkeypatch):
    with pytest.raises(ParamsError, match=r"pretrain\.schedule: unknown schedule 'step'"):
        from_mapping(TrainParams, {"schedule": "step"}, "params.yaml: pretrain")
    monkeypatch.setitem(schedule.SCHEDULES, "step", step_decay)
    p = from_mapping(TrainParams, {"schedule": "step", "lr": 0.01, "min_lr": 0.001, "warmup_steps": 2},
                     "params.yaml: pretrain")
    got = [schedule.lr_at(s, p, 12) for s in range(12)]
    assert got == [0.005, 0.01] + [0.01] * 5 + [0.001] * 5


def test_an_unknown_schedule_or_optimizer_names_the_key_and_the_nearest_name():
    with pytest.raises(ParamsError, match=r"sft\.schedule: unknown schedule 'cosin'; did you mean 'cosine'\?"):
        from_mapping(TrainParams, {"schedule": "cosin"}, "params.yaml: sft")
    with pytest.raises(ParamsError, match=r"pretrain\.optimizer: unknown optimizer 'mun'; did you mean 'muon'\?"):
        from_mapping(TrainParams, {"optimizer": "mun"}, "params.yaml: pretrain")


def tiny_model() -> GPT:
    torch.manual_seed(0)
    return GPT(ModelConfig(vocab_size=VOCAB, n_layer=1, n_head=2, n_kv_head=1, d_model=16, d_ff=32,
                           max_seq_len=12))


def batch(i: int):
    rows = (torch.randint(0, VOCAB, (4, 1), generator=torch.Generator().manual_seed(i)) + torch.arange(9)) % VOCAB
    return rows[:, :-1], rows[:, 1:]


def test_a_registered_optimizer_and_schedule_train_through_the_loop(monkeypatch, tmp_path: Path):
    monkeypatch.setitem(optim.OPTIMIZERS, "sgd", sgd)
    monkeypatch.setitem(schedule.SCHEDULES, "step", step_decay)
    params = from_mapping(TrainParams, {"optimizer": "sgd", "schedule": "step", "lr": 0.5, "min_lr": 0.05,
                                        "warmup_steps": 2, "weight_decay": 0.0, "eval_every": 100,
                                        "checkpoint_every": 100}, "params.yaml: pretrain")
    model = tiny_model()
    before = mean_loss(model, [batch(10_000)], torch.device("cpu"))
    result = train(model, params, RunPlan(steps=30), torch.device("cpu"), batch,
                   lambda: mean_loss(model, [batch(10_000)], torch.device("cpu")), tmp_path / "state.pt", "k", "test")
    finish(tmp_path / "state.pt")
    rates = [row[3] for row in result.train_curve]
    assert rates[:3] == [0.25, 0.5, 0.5] and rates[-1] == 0.05  # warmup, then the toy decay
    assert result.final_val_loss < before - 0.5, (before, result.final_val_loss)


def test_an_optimizer_that_leaves_parameters_out_is_refused(monkeypatch):
    def hidden_only(roles, p, target):
        return torch.optim.SGD(roles["hidden"], lr=p.lr)
    monkeypatch.setitem(optim.OPTIMIZERS, "partial", hidden_only)
    with pytest.raises(ValueError, match="every trainable parameter once"):
        optim.build_optimizer(tiny_model(), optim.OptimParams(optimizer="partial"), torch.device("cpu"))
