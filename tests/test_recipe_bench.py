"""The recipe benches' parts: the shipped recipe at another shape (bench/shipped.py) overrides
only shape, steps and rates; the time-to-loss arithmetic; the books corpus's documents; the
nanoGPT-style baseline's init, tying and schedule."""
from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from bench.baseline_gpt import NANOGPT, BaselineGPT, baseline_params
from bench.runs import eval_points, time_to
from bench.shipped import SHAPES, build_model, shipped_params
from lib.core.params import load_section
from lib.train.optim import build_optimizer
from lib.train.pretrain import PretrainParams
from lib.train.schedule import lr_at


def test_time_to_interpolates_the_first_crossing():
    curve = [{"train_s": 0.0, "val_loss": 9.0}, {"train_s": 10.0, "val_loss": 7.0},
             {"train_s": 20.0, "val_loss": 5.0}, {"train_s": 30.0, "val_loss": 6.0}]
    assert time_to(curve, 6.0, "train_s") == pytest.approx(15.0)
    assert time_to(curve, 9.5, "train_s") == 0.0
    assert time_to(curve, 4.0, "train_s") is None
    assert eval_points(10, 4) == [0, 2, 5, 8, 10] and eval_points(10, 2, initial=False) == [5, 10]


def test_shipped_recipe_at_a_shape_overrides_only_shape_steps_and_rates():
    shipped = load_section("pretrain", PretrainParams)
    p = shipped_params(SHAPES["6x384"], steps=100, lr_mult=2.0)
    m = p.model
    assert (m.n_layer, m.d_model, m.n_head, m.n_kv_head, m.max_seq_len) == (6, 384, 6, 6, 256)
    assert m.d_ff % 32 == 0 and abs(m.d_ff / 384 - shipped.model.d_ff / shipped.model.d_model) < 0.05
    assert m.width_mult == 384 / shipped.model.base_width
    assert (p.steps, p.batch_size, p.seq_len) == (100, 8, 256)
    assert p.warmup_steps == round(shipped.warmup_steps / shipped.steps * 100)
    for key in ("lr", "min_lr", "muon_lr"):
        assert getattr(p, key) == pytest.approx(2.0 * getattr(shipped, key))
    same = {f.name for f in dataclasses.fields(PretrainParams)} - {
        "model", "steps", "warmup_steps", "batch_size", "seq_len", "tokens_per_step", "lr", "min_lr", "muon_lr",
        "embed_lr", "head_lr"}
    assert all(getattr(p, k) == getattr(shipped, k) for k in same)
    keep = {f.name for f in dataclasses.fields(type(m))} - {"n_layer", "d_model", "n_head", "n_kv_head", "d_ff",
                                                            "max_seq_len"}
    assert all(getattr(m, k) == getattr(shipped.model, k) for k in keep)
    held = shipped_params(SHAPES["6x384"], steps=100, lr_mult=4.0, muon_mult=2.0)  # the AdamW groups alone
    assert (held.lr, held.muon_lr) == (pytest.approx(4.0 * shipped.lr), pytest.approx(2.0 * shipped.muon_lr))
    model = build_model(shipped_params(SHAPES["2x128"], steps=10), vocab_size=300)
    assert model.cfg.vocab_size == 300 and len(model.blocks) == 2


def test_nanogpt_schedule_through_the_library():
    # nanoGPT's shakespeare-char schedule (warmup 100 of 5000, lr 1e-3 to 1e-4) through the library's
    base = baseline_params(1e-3, steps=5000, warmup=0.02)
    assert base.warmup_steps == 100 and base.min_lr == pytest.approx(1e-4)
    assert lr_at(99, base, 5000) == pytest.approx(1e-3)
    assert lr_at(2550, base, 5000) == pytest.approx(5.5e-4)
    assert lr_at(5000, base, 5000) == pytest.approx(1e-4)
    bench = baseline_params(steps=1000, **NANOGPT)
    assert (bench.lr, bench.beta2, bench.warmup_steps) == (1e-3, 0.99, 20)


def test_books_lose_gutenberg_header_and_split_at_paragraphs(tmp_path):
    from bench.real_text import BOOKS, book_docs, book_files
    para = "It was a bright cold day in April, and the clocks were striking. " * 5
    text = ("The Project Gutenberg eBook of X\nlicence words\n*** START OF THE PROJECT GUTENBERG EBOOK X ***\n"
            + "\n\n".join(f"{i} {para}" for i in range(200)) + "\n*** END OF THE PROJECT GUTENBERG EBOOK X ***\nmore licence")
    (tmp_path / "x.txt").write_text(text)
    (tmp_path / "SOURCES.txt").write_text("where they came from")
    docs = book_docs(book_files(tmp_path), chunk=5_000)
    assert [p.name for p in book_files(tmp_path)] == ["x.txt"]
    assert len(docs) > 5 and all("licence" not in d["text"] and "GUTENBERG" not in d["text"] for d in docs)
    assert docs[0]["text"].startswith("0 It was") and docs[-1]["text"].endswith("striking.")
    assert all(len(d["text"]) < 5_000 + len(para) + 10 for d in docs)
    real = book_files(BOOKS)
    if not real:
        pytest.skip(f"{BOOKS}: no books (the benches' reporting corpus)")
    docs = book_docs(real)
    assert len({d["source"] for d in docs}) == len(real) and len(docs) >= 5 * len(real) // 2
    assert not any("*** START OF" in d["text"] or "*** END OF" in d["text"] for d in docs)


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


def test_time_to_loss_ratios_are_tokens_times_step_cost():
    """compare(): the token ratio is interpolated on our curve at the baseline's final loss, the
    time ratio is token ratio x per-step wall ratio, the speedup its inverse; the wall-clock ratio
    reads the same off the summed step times."""
    from bench.bench_time_to_loss import compare
    from bench.runs import Trainee

    def trainee(losses, step_s):
        t = Trainee("t", torch.nn.Linear(2, 2), None, {})
        t.curve = [{"step": 10 * i, "tokens": 1000 * i, "train_s": 10 * i * step_s, "val_loss": v}
                   for i, v in enumerate(losses)]
        t.step_walls = t.step_cpus = [step_s] * 41
        t.tokens = 4000
        return t
    out = compare(trainee([9.0, 6.0, 5.0, 4.5, 4.0], 1.5), trainee([9.0, 8.0, 7.0, 6.0, 5.5], 1.0))
    assert out["target_baseline_final_val_loss"] == 5.5
    assert out["token_ratio"] == pytest.approx(1500 / 4000, abs=1e-3)
    assert out["per_step_wall_ratio"] == 1.5 and out["time_ratio"] == pytest.approx(1.5 * 0.375, abs=1e-3)
    assert out["speedup"] == pytest.approx(1 / (1.5 * 0.375), abs=0.01)
    # read off the clocks: 22.5 s of ours (halfway between 15 and 30 s) against the baseline's 40 s
    assert out["ours_wall_s_to_target"] == 22.5 and out["wall_clock_ratio"] == pytest.approx(0.5625, abs=1e-3)


def test_warm_up_steps_spares_and_leaves_the_timed_runs_alone():
    """bench.runs.warm_up builds and steps throwaway runs; a run built after it trains to exactly
    the weights of one built without it (its seed is its own, the batches stateless)."""
    from bench.runs import Trainee, warm_up
    from bench.stepping import make_stepper
    from lib.data.batch import Batch
    from lib.train.params import TrainParams
    built = []

    def batch(i: int) -> Batch:
        return Batch(*torch.randint(0, 64, (2, 2, 16), generator=torch.Generator().manual_seed(i)))

    def make() -> Trainee:
        torch.manual_seed(3)
        model = BaselineGPT(64, 32, 1, 2, 16)
        params = TrainParams(lr=1e-2, warmup_steps=0, schedule="constant")
        built.append(Trainee("t", model, make_stepper(model, params, torch.device("cpu"), batch, steps=4), {}))
        return built[-1]

    def trained(t: Trainee) -> list[torch.Tensor]:
        for i in range(4):
            t.advance(i)
        return [p.detach().clone() for p in t.model.parameters()]
    cold = trained(make())
    warm_up([make], steps=2)
    assert len(built) == 2 and len(built[1].step_walls) == 2  # the spare took its untimed steps
    assert all(torch.equal(a, b) for a, b in zip(trained(make()), cold))
