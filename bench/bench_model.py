"""Training and generation speed of our GPT next to a nanoGPT-style GPT-2, measured in one run.

CPU (always): the fixed shape of the issue (6 layers, width 384, 6 heads, sequence 256, batch 8,
vocab 8192, fp32). Four training steps, interleaved so a load change on a shared machine hits
all alike, each with its own optimizer: our recipe (ReLU² 4x MLP, QK-norm, untied head, logit
soft-cap; Muon for the hidden matrices + AdamW), the same model with AdamW alone (Muon's
Newton-Schulz cost set apart: it is per optimizer step, not per token), our Llama-like default
(SwiGLU d_ff 1024, the parameter count of a 4x GELU MLP; AdamW) and the baseline
(bench/baseline_gpt.py: learned positions, LayerNorm, GELU, tied; nanoGPT's AdamW). Every step is
the library's (lib.train.loop.Stepper: forward, backward, clipping at 1.0, the optimizer from
lib.train.optim at a constant rate), as pretrain takes it. The allocator is set
as training sets it (lib.core.runtime.reuse_freed_memory) unless --default-allocator. Eager, then compiled with torch.compile (inductor).
Generation, batch 1, greedy: ours over the preallocated KV cache against transformers'
LlamaForCausalLM holding the same weights with its own cache, and ours without a cache.

GPU (when CUDA is available): a GPT-2-small shape (12 layers, width 768, sequence 1024) with bf16
autocast, fused AdamW and torch.compile; tokens/s and MFU against the device's bf16 peak.

    uv run python -m bench.bench_model            # prints one JSON object
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn as nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.data.batch import Batch  # noqa: E402
from lib.model.config import ModelConfig  # noqa: E402
from lib.model.gpt import GPT  # noqa: E402
from lib.core.runtime import configure_cuda, mfu, peak_flops, reuse_freed_memory  # noqa: E402
from lib.train.params import TrainParams  # noqa: E402
from bench.baseline_gpt import BaselineGPT, baseline_params  # noqa: E402
from bench.stepping import add_timing_args, make_stepper, timed_step  # noqa: E402


def _params(model: nn.Module, compile_: bool) -> TrainParams:
    """Each model with its own recipe's optimizer at a constant rate: Muon+AdamW for our recipe,
    nanoGPT's AdamW for the baseline, the library's AdamW otherwise."""
    if isinstance(model, BaselineGPT):
        return replace(baseline_params(1e-4, schedule="constant"), compile=compile_)
    muon = getattr(model, "bench_optimizer", "adamw") == "muon"
    return TrainParams(optimizer="muon" if muon else "adamw", lr=1e-4, min_lr=1e-4, muon_lr=1e-3, warmup_steps=0,
                       schedule="constant", grad_clip=1.0, compile=compile_)


def _trainer(model: nn.Module, device: torch.device, batch: int, seq: int, vocab: int, compile_: bool):
    """A step of the library's training loop (lib.train.loop.Stepper) on one fixed random batch."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, vocab, (batch, seq), generator=g).to(device)
    y = torch.randint(0, vocab, (batch, seq), generator=g).to(device)
    stepper = make_stepper(model, _params(model, compile_), device, lambda i: Batch(x, y))
    return lambda: timed_step(stepper, 0)[1:]


def bench_train(models: dict, device, batch, seq, vocab, warmup, steps, compile_=False) -> dict:
    steppers = {name: _trainer(m, device, batch, seq, vocab, compile_) for name, m in models.items()}
    for _ in range(warmup):
        for step in steppers.values():
            step()
    times = {name: [] for name in models}
    for _ in range(steps):  # interleaved: both models see the same machine load
        for name, step in steppers.items():
            times[name].append(step())
    out = {}
    for name, ts in times.items():
        wall, cpu = statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts)
        # CPU seconds (all threads) per step: the fairer figure when other jobs share the cores.
        out[name] = {"step_ms": round(wall * 1e3, 1), "tokens_per_s": round(batch * seq / wall, 1),
                     "cpu_ms_per_step": round(cpu * 1e3, 1), "tokens_per_cpu_s": round(batch * seq / cpu, 1),
                     "params": sum(p.numel() for p in models[name].parameters())}
    return out


RECIPE_MODEL = dict(mlp="relu2", qk_norm=True, zero_init_proj=True, logit_softcap=15.0, tie_embeddings=False)


def _ours(vocab, d, layers, heads, seq, recipe: bool) -> GPT:
    """Our recipe (ReLU² 4x MLP, QK-norm, untied, soft-capped, Muon) or the Llama-like default
    (SwiGLU with d_ff 1024, the parameter count of a 4x GELU MLP; AdamW)."""
    extra = dict(RECIPE_MODEL, d_ff=4 * d) if recipe else dict(d_ff=1024)
    model = GPT(ModelConfig(vocab_size=vocab, n_layer=layers, n_head=heads, n_kv_head=heads, d_model=d,
                            max_seq_len=seq, **extra))
    model.bench_optimizer = "muon" if recipe else "adamw"
    return model


@torch.no_grad()
def _hf_llama(model: GPT):
    """transformers' LlamaForCausalLM with our model's weights (our default variant is a Llama)."""
    import tempfile

    from transformers import AutoModelForCausalLM

    from lib.hf import convert
    cfg = model.cfg.to_dict()
    hf = convert.hf_config(cfg)
    hf.pop(convert.PROVENANCE_KEY)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.json").write_text(json.dumps(hf))
        from safetensors.torch import save_file
        state = {k: v.contiguous() for k, v in model.state_dict().items()}
        save_file(convert.to_hf_weights(state, cfg, "bench"), str(Path(tmp) / "model.safetensors"))
        return AutoModelForCausalLM.from_pretrained(tmp, dtype=torch.float32).eval()


def _median_rate(fn, tokens: int, repeats: int) -> float:
    fn()  # warm-up
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return round(tokens / statistics.median(ts), 1)


@torch.no_grad()
def bench_generate(model: GPT, prompt_len: int, new_tokens: int, repeats: int) -> dict:
    """Greedy decoding of ``new_tokens`` after a ``prompt_len`` prompt, batch 1: ours through
    lib.infer.generate (preallocated KV cache), ours without a cache, and transformers' Llama
    with the same weights through ``generate`` (its DynamicCache), repeats interleaved."""
    from lib.infer.generate import generate
    model.eval()
    prompt = torch.randint(0, model.cfg.vocab_size, (1, prompt_len), generator=torch.Generator().manual_seed(1))
    ids = prompt[0].tolist()

    def without_cache():
        seq = prompt
        for _ in range(new_tokens):
            logits, _ = model(seq)
            seq = torch.cat([seq, logits[:, -1:].argmax(-1)], dim=1)

    fns = {"ours_kv_cache": lambda: generate(model, ids, new_tokens, set()), "ours_without_cache": without_cache}
    try:
        hf = _hf_llama(model)
        mask = torch.ones_like(prompt)
        fns["hf_llama_kv_cache"] = lambda: hf.generate(prompt, attention_mask=mask, max_new_tokens=new_tokens,
                                                       min_new_tokens=new_tokens, do_sample=False,
                                                       eos_token_id=None, pad_token_id=0)
        same = generate(model, ids, new_tokens, set()) == fns["hf_llama_kv_cache"]()[0, prompt_len:].tolist()
    except ImportError:
        same = None
    rates = {name: [] for name in fns}
    for name, fn in fns.items():
        fn()  # warm-up
    for _ in range(repeats):  # interleaved, like the training steps
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            rates[name].append(new_tokens / (time.perf_counter() - t0))
    out = {name: {"tokens_per_s": round(statistics.median(r), 1)} for name, r in rates.items()}
    out["kv_cache_speedup"] = round(out["ours_kv_cache"]["tokens_per_s"] / out["ours_without_cache"]["tokens_per_s"], 2)
    if "hf_llama_kv_cache" in out:
        out["ratio_vs_hf_llama"] = round(out["ours_kv_cache"]["tokens_per_s"] / out["hf_llama_kv_cache"]["tokens_per_s"], 3)
        out["same_greedy_ids_as_hf"] = same
        out["goal"] = ">= 1.5"
    out.update(prompt_tokens=prompt_len, new_tokens=new_tokens)
    return out


def _ratios(train: dict, names: list[str]) -> None:
    for name in names:
        train[f"ratio_tokens_per_s_{name}"] = round(train[name]["tokens_per_s"] / train["baseline"]["tokens_per_s"], 3)
        train[f"ratio_tokens_per_cpu_s_{name}"] = round(
            train[name]["tokens_per_cpu_s"] / train["baseline"]["tokens_per_cpu_s"], 3)
    train["load_average_1m"] = round(os.getloadavg()[0], 1)  # > threads: shared cores, wall figures are noisy
    train["goal"] = ">= 1.0"


def cpu_bench(args) -> dict:
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    vocab, d, layers, heads, seq, batch = 8192, 384, 6, 6, 256, 8
    shape = (vocab, d, layers, heads, seq)
    device = torch.device("cpu")
    allocator = "glibc default" if args.default_allocator else (
        "freed memory reused" if reuse_freed_memory() else "default (not glibc)")
    recipe_adamw = _ours(*shape, recipe=True)
    recipe_adamw.bench_optimizer = "adamw"  # the recipe's model alone: Muon's cost set apart
    models = {"ours_recipe": _ours(*shape, recipe=True), "ours_recipe_adamw": recipe_adamw,
              "ours_llama": _ours(*shape, recipe=False), "baseline": BaselineGPT(vocab, d, layers, heads, seq)}
    train = bench_train(models, device, batch, seq, vocab, args.warmup, args.steps)
    _ratios(train, ["ours_recipe", "ours_recipe_adamw", "ours_llama"])
    train["allocator"] = allocator
    # the price of reuse_freed_memory: compare with a --default-allocator run
    train["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    report = {"shape": {"n_layer": layers, "d_model": d, "n_head": heads, "seq_len": seq, "batch": batch,
                        "vocab": vocab, "threads": args.threads},
              "train_eager": train}
    if not args.no_cpu_compile:  # inductor on CPU (gcc): compile time is excluded by the warm-up steps
        compiled = bench_train({"ours_recipe": models["ours_recipe"], "baseline": models["baseline"]}, device, batch,
                               seq, vocab, args.warmup + 1, args.steps, compile_=True)
        _ratios(compiled, ["ours_recipe"])
        report["train_compiled"] = compiled
    torch.manual_seed(0)
    llama = _ours(*shape, recipe=False)
    report["generate"] = bench_generate(llama, 16, args.new_tokens, args.gen_repeats)
    report["generate_recipe_tokens_per_s"] = bench_generate_ours_only(models["ours_recipe"], 16, args.new_tokens,
                                                                      args.gen_repeats)
    return report


@torch.no_grad()
def bench_generate_ours_only(model: GPT, prompt_len: int, new_tokens: int, repeats: int) -> float:
    """The recipe's decoding speed (transformers has no exact equivalent of it to compare)."""
    from lib.infer.generate import generate
    ids = torch.randint(0, model.cfg.vocab_size, (prompt_len,), generator=torch.Generator().manual_seed(1)).tolist()
    return _median_rate(lambda: generate(model.eval(), ids, new_tokens, set()), new_tokens, repeats)


def gpu_bench(args) -> dict:
    configure_cuda()
    device = torch.device("cuda")
    vocab, d, layers, heads, seq, batch = 50304, 768, 12, 12, 1024, args.gpu_batch
    torch.manual_seed(0)
    ours = _ours(vocab, d, layers, heads, seq, recipe=True).to(device)
    baseline = BaselineGPT(vocab, d, layers, heads, seq).to(device)
    train = bench_train({"ours": ours, "baseline": baseline}, device, batch, seq, vocab, args.gpu_warmup,
                        args.gpu_steps, compile_=not args.no_compile)
    peak = peak_flops(device, args.peak_tflops)
    flops = ours.flops_per_token(seq)
    m = mfu(flops, train["ours"]["tokens_per_s"], peak)
    train["ours"].update(flops_per_token=flops, mfu=None if m is None else round(m, 4))
    return {"device": torch.cuda.get_device_name(device), "peak_bf16_tflops": peak and peak / 1e12,
            "shape": {"n_layer": layers, "d_model": d, "n_head": heads, "seq_len": seq, "batch": batch,
                      "vocab": vocab, "bf16": True, "compile": not args.no_compile},
            "train": train, "goal_mfu": ">= 0.45"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_timing_args(ap)
    ap.add_argument("--new-tokens", type=int, default=112)
    ap.add_argument("--gen-repeats", type=int, default=3)
    ap.add_argument("--gpu-batch", type=int, default=16)
    ap.add_argument("--gpu-warmup", type=int, default=10)
    ap.add_argument("--gpu-steps", type=int, default=20)
    ap.add_argument("--no-compile", action="store_true", help="GPU: eager only")
    ap.add_argument("--no-cpu-compile", action="store_true", help="CPU: skip the torch.compile measurement")
    ap.add_argument("--peak-tflops", type=float, default=0.0, help="override the device's bf16 peak")
    ap.add_argument("--skip-cpu", action="store_true")
    ap.add_argument("--default-allocator", action="store_true",
                    help="CPU: leave glibc's allocator as it is (training calls reuse_freed_memory)")
    args = ap.parse_args()
    report = {"torch": torch.__version__}
    if not args.skip_cpu:
        report["cpu"] = cpu_bench(args)
    report["gpu"] = gpu_bench(args) if torch.cuda.is_available() else "not measured: no CUDA device"
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
