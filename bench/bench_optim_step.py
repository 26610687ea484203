"""The optimizer step alone at the 6 x 384 recipe shape (bench_model's ``ours_recipe``), on CPU:
torch's Muon (one matrix at a time) and ours (``lib.train.muon.BatchedMuon``) on the hidden
matrices, each plus AdamW on the rest, against AdamW on every parameter -- the recipe_adamw run.
Fixed random gradients; the runs interleave so they see the same machine load; after a warm-up,
each repeat reports the median step time of each and the ratios.

    nice uv run python -m bench.bench_optim_step --repeats 3
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from bench.bench_model import _ours
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
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
