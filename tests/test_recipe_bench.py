"""The time-to-loss benchmark's arithmetic and its baseline: the crossing time is interpolated
between evaluations, both schedules warm up and decay to their floor, and the nanoGPT-style
baseline has nanoGPT's init and tying."""
from __future__ import annotations

import math

import pytest
import torch

from bench.baseline_gpt import BaselineGPT, baseline_optimizer, nanogpt_lr
from bench.bench_time_to_loss import RECIPE, recipe_scale, time_to


def test_time_to_interpolates_the_first_crossing():
    curve = [{"train_s": 0.0, "val_loss": 9.0}, {"train_s": 10.0, "val_loss": 7.0},
             {"train_s": 20.0, "val_loss": 5.0}, {"train_s": 30.0, "val_loss": 6.0}]
    assert time_to(curve, 6.0, "train_s") == pytest.approx(15.0)
    assert time_to(curve, 9.5, "train_s") == 0.0
    assert time_to(curve, 4.0, "train_s") is None


def test_schedules_warm_up_then_decay_to_their_floor():
    assert recipe_scale(0.0, RECIPE) < 0.1 and recipe_scale(RECIPE["warmup"], RECIPE) == pytest.approx(1.0)
    assert recipe_scale(1.0, RECIPE) == pytest.approx(RECIPE["min_lr_ratio"])
    assert nanogpt_lr(0, 1e-3, 100, 5000, 1e-4) == pytest.approx(1e-3 / 101)
    assert nanogpt_lr(100, 1e-3, 100, 5000, 1e-4) == pytest.approx(1e-3)
    assert nanogpt_lr(2550, 1e-3, 100, 5000, 1e-4) == pytest.approx(5.5e-4)
    assert nanogpt_lr(6000, 1e-3, 100, 5000, 1e-4) == 1e-4


def test_baseline_is_a_tied_gpt2_with_nanogpt_init():
    torch.manual_seed(0)
    model = BaselineGPT(vocab=512, d=128, n_layer=8, n_head=4, max_len=64)
    assert model.head.weight is model.wte.weight
    assert abs(model.blocks[0].c_attn.weight.std().item() - 0.02) < 0.002
    assert abs(model.blocks[0].c_proj.weight.std().item() - 0.02 / math.sqrt(16)) < 0.001
    opt = baseline_optimizer(model, 1e-3)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.1, 0.0]
    x, y = torch.randint(0, 512, (2, 16)), torch.randint(0, 512, (2, 16))
    _, loss = model(x, y)
    assert abs(loss.item() - math.log(512)) < 0.5  # near-uniform at init
