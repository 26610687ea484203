"""Benchmark: LAMBADA scoring, batched (right-padded, one forward per batch) against the baseline of
one passage per forward, on the same model and passages in the same run; prints JSON with
passages/s for each and the speedup. Also checks the two give the same scores.

    uv run python -m bench.bench_eval [--passages 256] [--batch-size 16] [--device cpu]
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch

from lib.eval.lambada import LambadaItem, score_items
from lib.model.config import ModelConfig
from lib.model.gpt import GPT


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--passages", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    # the shipped pretrain size: 4 layers, d_model 128, window 128, vocab 2048
    model = GPT(ModelConfig(n_layer=4, n_head=4, n_kv_head=4, d_model=128, d_ff=352, max_seq_len=128,
                            vocab_size=2048)).to(args.device).eval()
    rng = np.random.default_rng(0)
    # LAMBADA-like lengths: contexts of 60-160 tokens (some truncated), targets of 1-3 tokens
    items = [LambadaItem(rng.integers(8, 2048, int(rng.integers(60, 160))).tolist(),
                         rng.integers(8, 2048, int(rng.integers(1, 4))).tolist()) for _ in range(args.passages)]
    score_items(model, items[:8], args.device, args.batch_size, progress=False)  # warm-up
    result = {"passages": len(items), "device": args.device, "threads": args.threads}
    scores = {}
    for name, bs in [("unbatched", 1), ("batched", args.batch_size)]:
        t0 = time.perf_counter()
        scores[name] = score_items(model, items, args.device, bs, progress=False)
        result[f"{name}_passages_per_s"] = round(len(items) / (time.perf_counter() - t0), 1)
    result["speedup"] = round(result["batched_passages_per_s"] / result["unbatched_passages_per_s"], 2)
    result["max_abs_loglik_diff"] = float(np.abs(scores["batched"][0] - scores["unbatched"][0]).max())
    result["greedy_equal"] = bool((scores["batched"][1] == scores["unbatched"][1]).all())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
