"""The time-to-loss benchmark's arithmetic and its baseline: the crossing time is interpolated
between evaluations, both schedules warm up and decay to their floor, and the nanoGPT-style
baseline has nanoGPT's init and tying."""
from __future__ import annotations

import math

import pytest
import torch

from bench.baseline_gpt import BaselineGPT, baseline_params
from bench.bench_time_to_loss import BASELINE, PSEUDO_STEPS, RECIPE, recipe_scale, time_to
from lib.train.optim import build_optimizer
from lib.train.schedule import lr_at


def test_time_to_interpolates_the_first_crossing():
    curve = [{"train_s": 0.0, "val_loss": 9.0}, {"train_s": 10.0, "val_loss": 7.0},
             {"train_s": 20.0, "val_loss": 5.0}, {"train_s": 30.0, "val_loss": 6.0}]
    assert time_to(curve, 6.0, "train_s") == pytest.approx(15.0)
    assert time_to(curve, 9.5, "train_s") == 0.0
    assert time_to(curve, 4.0, "train_s") is None


def test_schedules_warm_up_then_decay_to_their_floor():
    assert recipe_scale(0.0, RECIPE) < 0.1 and recipe_scale(RECIPE["warmup"], RECIPE) == pytest.approx(1.0)
    assert recipe_scale(1.0, RECIPE) == pytest.approx(RECIPE["min_lr_ratio"])
    # nanoGPT's shakespeare-char schedule (warmup 100 of 5000, lr 1e-3 to 1e-4) through the library's
    base = baseline_params(1e-3, steps=5000, warmup=0.02)
    assert base.warmup_steps == 100 and base.min_lr == pytest.approx(1e-4)
    assert lr_at(99, base, 5000) == pytest.approx(1e-3)
    assert lr_at(2550, base, 5000) == pytest.approx(5.5e-4)
    assert lr_at(5000, base, 5000) == pytest.approx(1e-4)
    bench = baseline_params(steps=PSEUDO_STEPS, **BASELINE)
    assert (bench.lr, bench.beta2, bench.warmup_steps) == (1e-3, 0.99, 20)


def test_baseline_is_a_tied_gpt2_with_nanogpt_init():
    torch.manual_seed(0)
    model = BaselineGPT(vocab=512, d=128, n_layer=8, n_head=4, max_len=64)
    assert model.head.weight is model.wte.weight
    assert abs(model.blocks[0].c_attn.weight.std().item() - 0.02) < 0.002
    assert abs(model.blocks[0].c_proj.weight.std().item() - 0.02 / math.sqrt(16)) < 0.001
    opt = build_optimizer(model, baseline_params(1e-3), torch.device("cpu"))
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]  # nanoGPT's: matrices decayed, gains not
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(model.parameters()))
    x, y = torch.randint(0, 512, (2, 16)), torch.randint(0, 512, (2, 16))
    _, loss = model(x, y)
    assert abs(loss.item() - math.log(512)) < 0.5  # near-uniform at init


def test_baseline_and_ours_train_through_the_library_step():
    """bench/'s models take lib.train.loop.Stepper: the loss falls on a repeated batch, and the
    baseline honours a loss mask as the library's batches may carry one."""
    from bench.stepping import make_stepper
    from lib.data.batch import Batch
    from lib.model.config import ModelConfig
    from lib.model.gpt import GPT
    from lib.train.params import TrainParams
    torch.manual_seed(0)
    x, y = torch.randint(0, 128, (4, 32)), torch.randint(0, 128, (4, 32))
    ours = GPT(ModelConfig(vocab_size=128, n_layer=2, n_head=2, n_kv_head=2, d_model=32, d_ff=64, max_seq_len=32))
    models = {"baseline": (BaselineGPT(128, 32, 2, 2, 32), baseline_params(3e-3, schedule="constant")),
              "ours": (ours, TrainParams(optimizer="muon", lr=3e-3, min_lr=3e-3, warmup_steps=0, schedule="constant"))}
    for name, (model, params) in models.items():
        step = make_stepper(model, params, torch.device("cpu"), lambda i: Batch(x, y), steps=20)
        losses = [step(i).loss for i in range(20)]
        assert losses[-1] < losses[0] - 0.5, (name, losses)
    mask = torch.zeros_like(y)
    mask[:, :5] = 1
    baseline = models["baseline"][0]
    _, masked = baseline(x, y, loss_mask=mask)
    _, first = baseline(x[:, :5], y[:, :5])
    torch.testing.assert_close(masked, first)
