"""The optimizer step alone at the 6 x 384 recipe shape (bench_model's ``ours_recipe``), on CPU:
torch's Muon (one matrix at a time) and ours (``lib.train.muon.BatchedMuon``) on the hidden
matrices, each plus AdamW on the rest, against AdamW on every parameter -- the recipe_adamw run.
Fixed random gradients; the runs interleave so they see the same machine load; after a warm-up,
each repeat reports the median step time of each and the ratios.

    nice uv run python -m bench.bench_optim_step --repeats 3

``--whole-step``: the whole training step (forward, backward, clipping, optimizer; the library's
Stepper) of the SHIPPED recipe (params.yaml's pretrain section at 6 x 384 through bench/shipped.py:
Muon + AdamW, dropout as shipped) against the same model stepped by plain AdamW, and against the
nanoGPT-style baseline (bench/baseline_gpt.py) with nanoGPT's AdamW; one fixed batch (seq 256,
batch 8, vocab 8192), interleaved, a warm-up, then per repeat the median of each and the ratios.

    nice uv run python -m bench.bench_optim_step --whole-step --repeats 3

``--ablate``: where the rest of the gap to the baseline goes. The shipped model's whole step under
AdamW (so Muon is out of it) with one architecture choice at a time swapped for nanoGPT's (no
dropout, no QK-norm, a 4x GELU MLP, learned positions, LayerNorm), all of them at once, and the
baseline itself; interleaved, medians, each as a fraction of the shipped model's step.

    nice uv run python -m bench.bench_optim_step --ablate --threads 1
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

from dataclasses import replace

import torch

from bench.baseline_gpt import BaselineGPT, baseline_params
from bench.bench_model import _ours
from bench.shipped import SHAPES, build_model, shipped_params
from bench.stepping import add_timing_args, make_stepper
from lib.data.batch import Batch
from lib.core.runtime import reuse_freed_memory
from lib.train.muon import BatchedMuon
from lib.train.optim import MuonAdamW, OptimParams, build_optimizer, param_roles, role_groups


def optimizers(model) -> dict:
    p = OptimParams(optimizer="muon", lr=1e-4, muon_lr=1e-3)
    roles = param_roles(model)
    rest = lambda: torch.optim.AdamW(role_groups(roles, p, with_hidden=False), lr=p.lr)  # noqa: E731
    kw = dict(lr=p.muon_lr, weight_decay=0.0, momentum=p.muon_momentum, nesterov=True)
    return {"adamw": build_optimizer(model, OptimParams(optimizer="adamw", lr=1e-4), torch.device("cpu")),
            "muon_torch": MuonAdamW(torch.optim.Muon(roles["hidden"], **kw), rest()),
            "muon_batched": MuonAdamW(BatchedMuon(roles["hidden"], **kw), rest())}


def timed(opt, params, grads) -> float:
    for p, g in zip(params, grads):
        p.grad = g.clone()
    t0 = time.perf_counter()
    opt.step()
    return time.perf_counter() - t0


class FixedBatchSteps:
    """Whole training steps at the 6 x 384 recipe shape on one fixed random batch (seq 256, batch 8,
    vocab 8192): the shipped recipe's params, its model under any model overrides, the baseline."""

    def __init__(self):
        self.shape, self.vocab = SHAPES["6x384"], 8192
        self.recipe = shipped_params(self.shape, steps=1000)
        g = torch.Generator().manual_seed(0)
        self.x, self.y = (torch.randint(0, self.vocab, (self.shape.batch, self.shape.seq_len), generator=g)
                          for _ in range(2))

    def stepper(self, model, params):
        return make_stepper(model, params, torch.device("cpu"), lambda i: Batch(self.x, self.y), steps=1000)

    def ours(self, params, **model_overrides):
        """The shipped model (seed 0) with ``model_overrides``, stepped with ``params``."""
        params = replace(params, model=replace(params.model, **model_overrides))
        torch.manual_seed(0)
        return self.stepper(build_model(params, self.vocab), params)

    def baseline(self):
        torch.manual_seed(0)
        s = self.shape
        return self.stepper(BaselineGPT(self.vocab, s.d_model, s.n_layer, s.n_head, s.seq_len),
                            baseline_params(1e-3, steps=1000))


def whole_step(args) -> None:
    setup = FixedBatchSteps()
    shape = setup.shape
    steppers = {"recipe_muon": setup.ours(setup.recipe),
                "recipe_adamw": setup.ours(replace(setup.recipe, optimizer="adamw")),
                "baseline_adamw": setup.baseline()}

    def timed(stepper, i) -> tuple[float, float]:
        t0, c0 = time.perf_counter(), time.process_time()
        stepper(i)
        return time.perf_counter() - t0, time.process_time() - c0

    for i in range(args.warmup):
        for s in steppers.values():
            timed(s, 100 + i)
    ratios = []
    for r in range(args.repeats):
        times = {name: [] for name in steppers}
        for i in range(args.steps):
            for name, s in steppers.items():
                times[name].append(timed(s, 100 + i))
        ms = {name: round(statistics.median(t[0] for t in ts) * 1e3, 1) for name, ts in times.items()}
        cpu = {name: round(statistics.median(t[1] for t in ts) * 1e3, 1) for name, ts in times.items()}
        ratio = {"adamw_over_muon": round(ms["recipe_adamw"] / ms["recipe_muon"], 3),
                 "adamw_over_muon_cpu": round(cpu["recipe_adamw"] / cpu["recipe_muon"], 3),
                 "baseline_over_muon": round(ms["baseline_adamw"] / ms["recipe_muon"], 3)}
        ratios.append(ratio)
        print(json.dumps({"repeat": r, "step_ms": ms, "step_cpu_ms": cpu, **ratio,
                          "load_1m": round(os.getloadavg()[0], 1)}), flush=True)
    spread = {key: {"median": statistics.median(q[key] for q in ratios), "min": min(q[key] for q in ratios),
                    "max": max(q[key] for q in ratios)} for key in ratios[0]}
    print(json.dumps({"shape": shape.name, "threads": args.threads, "repeats": args.repeats, **spread,
                      "goal": ">= 0.9 (adamw_over_muon)"}), flush=True)


def ablate(args) -> None:
    setup = FixedBatchSteps()
    shape, adamw = setup.shape, replace(setup.recipe, optimizer="adamw")
    gelu = dict(mlp="gelu", d_ff=4 * shape.d_model)
    steppers = {"shipped": setup.ours(adamw), "no_dropout": setup.ours(adamw, dropout=0.0),
                "no_qk_norm": setup.ours(adamw, qk_norm=False), "gelu_4x": setup.ours(adamw, **gelu),
                "learned_positions": setup.ours(adamw, positions="learned"),
                "layernorm": setup.ours(adamw, norm="layernorm"),
                "all_five": setup.ours(adamw, dropout=0.0, qk_norm=False, positions="learned", norm="layernorm",
                                       **gelu),
                "baseline": setup.baseline()}
    for i in range(args.warmup):
        for s in steppers.values():
            s(100 + i)
    times = {name: [] for name in steppers}
    for i in range(args.steps * args.repeats):
        for name, s in steppers.items():
            t0 = time.perf_counter()
            s(100 + i)
            times[name].append(time.perf_counter() - t0)
    ref = statistics.median(times["shipped"])
    print(json.dumps({"shape": shape.name, "threads": args.threads, "optimizer": "adamw",
                      "step_ms": {k: round(statistics.median(t) * 1e3, 1) for k, t in times.items()},
                      "fraction_of_shipped": {k: round(statistics.median(t) / ref, 3) for k, t in times.items()},
                      "load_1m": round(os.getloadavg()[0], 1)}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_timing_args(ap)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--whole-step", action="store_true", help="the shipped recipe's whole training step")
    ap.add_argument("--ablate", action="store_true", help="the model's step with nanoGPT's choices one at a time")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    reuse_freed_memory()  # as training does (lib.core.runtime.setup_torch)
    if args.whole_step:
        return whole_step(args)
    if args.ablate:
        return ablate(args)
    torch.manual_seed(0)
    model = _ours(8192, 384, 6, 6, 256, recipe=True)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = [torch.randn_like(p) * 1e-3 for p in params]
    opts = optimizers(model)
    for _ in range(args.warmup):
        for opt in opts.values():
            timed(opt, params, grads)
    for r in range(args.repeats):
        times = {name: [] for name in opts}
        for _ in range(args.steps):
            for name, opt in opts.items():
                times[name].append(timed(opt, params, grads))
        ms = {name: round(statistics.median(t) * 1e3, 1) for name, t in times.items()}
        print(json.dumps({"repeat": r, "step_ms": ms,
                          "batched_over_torch_muon": round(ms["muon_torch"] / ms["muon_batched"], 2),
                          "adamw_over_muon_torch": round(ms["adamw"] / ms["muon_torch"], 3),
                          "adamw_over_muon_batched": round(ms["adamw"] / ms["muon_batched"], 3)}), flush=True)


if __name__ == "__main__":
    main()
