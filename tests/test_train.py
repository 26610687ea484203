"""The training loop: schedules, optimizer groups, accumulation, NaN handling, early stopping,
samples, in-process exact resume, and the CUDA-only switches (bf16, fused AdamW, TF32, compile)
exercised as far as a CPU allows."""
from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from lib.model.checkpoint import load_state
from lib.core.errors import UserError
from lib.model.config import ModelConfig
from lib.model.gpt import GPT
from lib.core.runtime import autocast, configure_cuda, mfu, peak_flops
from lib.data.batch import Batch
from lib.eval.validation import mean_loss
from lib.train.loop import finish, train
from lib.train.optim import build_optimizer
from lib.train.schedule import lr_at
from tests.fixtures_tiny import train_config

VOCAB = 40


def tiny_model(dropout: float = 0.0) -> GPT:
    torch.manual_seed(0)
    return GPT(ModelConfig(vocab_size=VOCAB, n_layer=1, n_head=2, n_kv_head=1, d_model=16, d_ff=32,
                           max_seq_len=12, dropout=dropout))


def loop(**kw):
    base = dict(steps=6, lr=1e-2, min_lr=1e-3, warmup_steps=2, weight_decay=0.1, beta1=0.9, beta2=0.95,
                grad_clip=1.0, eval_every=3, checkpoint_every=2)
    return train_config(**{**base, **kw})


def rows(index: int, n: int = 4) -> torch.Tensor:
    """Counting sequences from random starts: learnable within a few steps."""
    starts = torch.randint(0, VOCAB, (n, 1), generator=torch.Generator().manual_seed(1000 + index))
    return (starts + torch.arange(9)) % VOCAB


def batch(i: int):
    return Batch.from_rows(rows(i).numpy())


def val_loss(model):
    return lambda: mean_loss(model, [batch(10_000)], torch.device("cpu"))


def run(tmp_path: Path, model=None, cfg=None, batches=batch, key="k", keep_state=False, **kw):
    model = model or tiny_model()
    result = train(model, *(cfg or loop()), torch.device("cpu"), batches, val_loss(model), tmp_path / "state.pt",
                   key, "test", **kw)
    if not keep_state:  # what a stage does once its outputs are written
        finish(tmp_path / "state.pt")
    return model, result


def weights(model) -> dict:
    return {k: v.clone() for k, v in model.state_dict().items()}


def assert_same(a: dict, b: dict):
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_schedules_warm_up_then_decay_to_min_lr():
    for schedule in ("cosine", "linear"):
        cfg, _ = loop(steps=10, schedule=schedule)
        assert lr_at(0, cfg, 10) == pytest.approx(5e-3) and lr_at(1, cfg, 10) == pytest.approx(1e-2)
        assert lr_at(10, cfg, 10) == pytest.approx(1e-3)
        assert lr_at(2, cfg, 10) > lr_at(6, cfg, 10) > lr_at(9, cfg, 10)
    assert lr_at(6, loop(steps=10, schedule="linear")[0], 10) == pytest.approx(1e-3 + 0.5 * 9e-3)
    assert lr_at(9, loop(steps=10, schedule="constant")[0], 10) == 1e-2


def test_optimizer_decays_matrices_only_and_is_fused_on_cuda():
    model = tiny_model()
    opt = build_optimizer(model, loop()[0], torch.device("cpu"))
    decay, no_decay = opt.param_groups
    assert all(p.dim() >= 2 for p in decay["params"]) and decay["weight_decay"] == 0.1
    assert all(p.dim() == 1 for p in no_decay["params"]) and no_decay["weight_decay"] == 0.0
    assert not opt.defaults["fused"]


def test_optimizer_is_fused_on_cuda(monkeypatch):
    seen, adamw = {}, torch.optim.AdamW  # records the arguments, builds an unfused one (no CUDA here)
    monkeypatch.setattr(torch.optim, "AdamW", lambda groups, **kw: seen.update(kw) or adamw(groups, lr=kw["lr"]))
    build_optimizer(tiny_model(), loop()[0], torch.device("cuda"))
    assert seen["fused"] is True and seen["betas"] == (0.9, 0.95)


def test_precision_switches():
    with autocast(torch.device("cpu")):
        assert not torch.is_autocast_enabled("cpu")  # fp32 on CPU: bit-reproducible
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "CUDA is not available" on a CPU-only machine
        ctx = autocast(torch.device("cuda"))
    assert isinstance(ctx, torch.autocast) and ctx.fast_dtype == torch.bfloat16 and ctx.device == "cuda"
    before = torch.get_float32_matmul_precision()
    try:
        configure_cuda()
        assert torch.get_float32_matmul_precision() == "high"  # TF32 matmuls
    finally:
        torch.set_float32_matmul_precision(before)
    assert peak_flops(torch.device("cpu")) is None and peak_flops(torch.device("cpu"), 100.0) == 1e14
    assert mfu(6e9, 1000.0, 1e13) == pytest.approx(0.6) and mfu(6e9, 1000.0, None) is None


def test_loss_falls_and_curves_are_recorded(tmp_path):
    model, result = run(tmp_path, cfg=loop(steps=8, lr=3e-2))
    assert [row[0] for row in result.train_curve] == list(range(8))
    assert [row[0] for row in result.val_curve] == [0, 3, 6, 8]
    assert result.val_curve[-1][2] < result.val_curve[0][2]
    assert result.tokens == 8 * 4 * 8 and result.last_step == 8
    assert not (tmp_path / "state.pt").exists()  # the finished run's state is removed


def test_gradient_accumulation_equals_one_big_batch(tmp_path):
    big = lambda i: Batch.from_rows(rows(i, 8).numpy())  # noqa: E731

    def half(i):
        return Batch.from_rows(rows(i // 2, 8)[(i % 2) * 4:(i % 2) * 4 + 4].numpy())
    a, ra = run(tmp_path / "a", cfg=loop(), batches=big)
    b, rb = run(tmp_path / "b", cfg=loop(accum_steps=2), batches=half)
    for (k, x), y in zip(weights(a).items(), weights(b).values()):
        torch.testing.assert_close(x, y, atol=1e-5, rtol=1e-4, msg=k)
    assert ra.tokens == rb.tokens
    assert [r[2] for r in ra.train_curve] == pytest.approx([r[2] for r in rb.train_curve], rel=1e-5)


def nan_at(bad_step: int):
    def batches(i):
        b = batch(i)
        return Batch(b.inputs, torch.full_like(b.targets, -100)) if i == bad_step else b  # nothing to predict: loss NaN
    return batches


def test_non_finite_loss_stops_naming_the_step_and_writes_nothing(tmp_path):
    with pytest.raises(UserError, match="at step 3"):
        run(tmp_path, cfg=loop(checkpoint_every=100), batches=nan_at(3))
    assert not (tmp_path / "state.pt").exists()


def test_non_finite_loss_can_skip_the_batch(tmp_path):
    model, result = run(tmp_path, cfg=loop(on_nan="skip"), batches=nan_at(3))
    assert result.skipped_steps == [3] and 3 not in [r[0] for r in result.train_curve]
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_early_stopping_after_patience_validations_without_a_new_best(tmp_path):
    model = tiny_model()
    losses = iter([5.0, 4.0, 4.5, 4.6, 4.7, 4.8])
    result = train(model, *loop(steps=20, eval_every=2, early_stop_patience=2), torch.device("cpu"), batch,
                   lambda: next(losses), tmp_path / "s.pt", "k", "test")
    assert result.early_stopped and result.last_step == 6 and result.best_step == 2
    assert [r[0] for r in result.val_curve] == [0, 2, 4, 6]


def test_samples_are_taken_at_the_interval_and_at_the_end(tmp_path):
    seen = []
    _, result = run(tmp_path, cfg=loop(sample_every=4), sample=lambda step: seen.append(step) or {"p": str(step)})
    assert seen == [4, 6] and [s["step"] for s in result.samples] == [4, 6]


def test_compile_flag_compiles_the_training_module(tmp_path, monkeypatch):
    compiled = []
    monkeypatch.setattr(torch, "compile", lambda m, **kw: compiled.append(m) or m)
    model, _ = run(tmp_path, cfg=loop(steps=1, compile=True))
    assert compiled == [model]


class Crash(Exception):
    pass


def crash_at(step: int, dropout_model_batches=batch):
    def batches(i):
        if i == step:
            raise Crash
        return dropout_model_batches(i)
    return batches


def test_interrupted_run_resumes_to_the_same_weights(tmp_path):
    cfg = loop(steps=7)
    reference, ref = run(tmp_path / "ref", model=tiny_model(dropout=0.2), cfg=cfg)
    with pytest.raises(Crash):
        run(tmp_path / "run", model=tiny_model(dropout=0.2), cfg=cfg, batches=crash_at(5))
    assert load_state(tmp_path / "run" / "state.pt")["loop"]["step"] == 4
    torch.manual_seed(123)  # a resumed run restores the RNG itself
    resumed, res = run(tmp_path / "run", model=tiny_model(dropout=0.2), cfg=cfg)
    assert res.resumed_from == 4
    assert_same(weights(resumed), weights(reference))
    assert_same(res.best_model, ref.best_model)
    assert res.train_curve == ref.train_curve and res.val_curve == ref.val_curve


def test_state_of_other_params_is_never_resumed(tmp_path):
    with pytest.raises(Crash):
        run(tmp_path, batches=crash_at(5))
    _, result = run(tmp_path, key="other-params")
    assert result.resumed_from == 0


def test_kept_state_of_a_finished_run_returns_its_result_without_training(tmp_path):
    model, first = run(tmp_path, keep_state=True)
    assert load_state(tmp_path / "state.pt")["done"]
    again, second = run(tmp_path, model=tiny_model(), batches=crash_at(0), keep_state=True)
    assert_same(weights(again), weights(model))
    assert second.val_curve == first.val_curve and second.best_step == first.best_step


def test_loop_config_validates():
    with pytest.raises(ValueError, match="schedule"):
        loop(schedule="step")
    with pytest.raises(ValueError, match="on_nan"):
        loop(on_nan="ignore")


def test_reuse_freed_memory_keeps_large_blocks_for_the_next_allocation():
    import platform
    import resource

    from lib.core.runtime import reuse_freed_memory
    glibc = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"
    assert reuse_freed_memory() == glibc
    if not glibc:
        pytest.skip("mallopt is glibc's")

    def faults_of_a_logits_sized_tensor() -> int:  # 64 MB: over glibc's largest mmap threshold
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t = torch.ones(2048, 8192)
        del t
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    for _ in range(8):  # the first few grow the heap (an aligned request outgrows the block freed)
        faults_of_a_logits_sized_tensor()
    # in steady state a freed block serves the next tensor; a fresh mmap faults in all 16,384 pages
    assert faults_of_a_logits_sized_tensor() < 1000
