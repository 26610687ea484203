"""Does each hand-written backward in lib/model/fused.py pay? Forward plus backward of each op,
the fused function against the plain autograd formula, in one process, warmed up, interleaved.

Ops and tensors are laid out as the model uses them: RoPE on the query and key heads split out
of the one q/k/v projection (a strided view), the soft-cap on fp32 logits, ReLU² on the MLP's
hidden layer. Two shapes: the default model of params.yaml (4 layers, width 128, 4 heads,
sequence 256, batch 8, vocab 2048; ReLU² and the soft-cap at that width although the default
uses neither) and bench_model's 6 x 384 (6 heads, sequence 256, batch 8, vocab 8192, d_ff 4x).
``speedup`` is the plain formula's time over the fused one's: above 1, the hand-written backward
pays. Times are medians over ``--repeats`` of ``--iters`` calls, fp32, ``--threads`` threads.

    uv run python -m bench.bench_fused_ops            # prints one JSON object
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from lib.model import fused  # noqa: E402
from lib.model.layers import rope_tables  # noqa: E402

SHAPES = {"default": dict(batch=8, seq=256, d_model=128, n_head=4, vocab=2048),
          "6x384": dict(batch=8, seq=256, d_model=384, n_head=6, vocab=8192)}


def plain_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1)


def cases(s: dict) -> dict[str, tuple[Callable, Callable, Callable[[], torch.Tensor], Callable]]:
    """name: (fused op, plain op, a fresh leaf input, the op's input from that leaf)."""
    B, T, H, d = s["batch"], s["seq"], s["n_head"], s["d_model"]
    D = d // H
    cos, sin = (t[:T, None] for t in rope_tables(D, T, 10000.0))
    g = torch.Generator().manual_seed(0)
    qkv = torch.randn(B, T, 3 * H, D, generator=g)
    logits = torch.randn(B, T, s["vocab"], generator=g) * 10
    hidden = torch.randn(B, T, 4 * d, generator=g)
    qk = lambda t: t.split([2 * H, H], dim=2)[0]  # noqa: E731  the attention's q and k heads, strided
    same = lambda t: t  # noqa: E731
    return {"rope": (lambda x: fused.rope(x, cos, sin), lambda x: plain_rope(x, cos, sin), lambda: qkv, qk),
            "softcap": (lambda x: fused.softcap(x, 15.0), lambda x: torch.tanh(x / 15.0) * 15.0, lambda: logits, same),
            "relu2": (fused.relu_squared, lambda x: torch.relu(x).square(), lambda: hidden, same)}


def timer(op: Callable, make: Callable[[], torch.Tensor], view: Callable, iters: int) -> Callable[[], float]:
    leaf = make().clone().requires_grad_(True)
    grad = torch.randn(view(leaf).shape, generator=torch.Generator().manual_seed(1))

    def run() -> float:
        t0 = time.perf_counter()
        for _ in range(iters):
            op(view(leaf)).backward(grad)
            leaf.grad = None
        return (time.perf_counter() - t0) / iters
    return run


def bench_shape(s: dict, iters: int, repeats: int) -> dict:
    out = {}
    for name, (fused_op, plain_op, make, view) in cases(s).items():
        runs = {"fused": timer(fused_op, make, view, iters), "plain": timer(plain_op, make, view, iters)}
        for run in runs.values():  # warm-up: allocator, kernels
            run()
        times = {k: [] for k in runs}
        for _ in range(repeats):  # interleaved: a load change hits both alike
            for k, run in runs.items():
                times[k].append(run())
        fused_s, plain_s = statistics.median(times["fused"]), statistics.median(times["plain"])
        out[name] = {"fused_ms": round(fused_s * 1e3, 3), "plain_ms": round(plain_s * 1e3, 3),
                     "speedup": round(plain_s / fused_s, 2)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    report = {"torch": torch.__version__, "threads": args.threads, "dtype": "float32", "shapes": SHAPES,
              "goal": "keep a hand-written backward only where speedup > 1 (fused.py's docstring)"}
    for name, s in SHAPES.items():
        report[name] = bench_shape(s, args.iters, args.repeats)
    report["load_average_1m"] = round(os.getloadavg()[0], 1)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
