"""Does the best learning rate stay put as the model grows? 3 LR multipliers x 3 shapes of the
SHIPPED recipe, against the nanoGPT-style baseline with its own rate swept.

Ours: params.yaml's pretrain section at each shape (bench/shipped.py: only the shape, the step
count and one multiplier on every rate overridden; the model and optimizer built by the stage's own
builders, rates given at pretrain.model.base_width and scaled to the shape muP-style). Baseline:
bench/baseline_gpt.py (nanoGPT's GPT-2, AdamW, cosine to lr/10) at four peak rates. Shapes:
2x128, 6x384, 8x512 (head size 64), sequence 256, batch 8, fp32 on CPU, dropout as shipped (the
baseline: nanoGPT's 0). Every shape trains for the same 120 steps (equal tokens), every run of a
shape on the same batches (lib.data.windows.TrainWindows, seed 0), scored on the same val windows
spread over the split (lib.data.val_windows), at a few points on the way and at the end.

TUNING corpus: bench/real_text.py's Debian HTML documentation (``--corpus debian``); the books
are kept for reporting (bench_time_to_loss). Writes bench/results/lr_sweep.json after every run
and prints the table shape x multiplier -> final val loss.

    nice uv run python -m bench.bench_lr_sweep --threads 2          # ~70 min on 2 otherwise idle cores
    nice uv run python -m bench.bench_lr_sweep --steps 2x128=50 --shapes 2x128   # a quick look
    nice uv run python -m bench.bench_lr_sweep --muon-mult 1 --mults 0.25 0.5 1 2 4 --baseline-lrs \
        --out groups.json           # the AdamW groups' rates alone (Muon's held at its shipped rate)
    nice uv run python -m bench.bench_lr_sweep --seed 1 --shapes 2x128 --baseline-lrs --out seed1.json
                                    # another init seed: how far apart two runs land by chance

bench/results/lr_sweep_adamw_groups.json was run at commit 2278b38 (lr 0.003, muon_lr 0.02, no width
factor on the AdamW groups yet) with --muon-mult 2 --mults 2 4 8 16 32 64.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import real_text  # noqa: E402
from bench.runs import (Trainee, add_run_args, baseline, bits_per_nat, evaluator, ours, setup_runs,  # noqa: E402
                        shape_entry, train_together)
from bench.shipped import SHAPES  # noqa: E402
from lib.core.io import read_json, write_json  # noqa: E402
from lib.core.params import load_seed  # noqa: E402
from lib.data.windows import TrainWindows  # noqa: E402

OUT = Path(__file__).resolve().parent / "results" / "lr_sweep.json"
# Equal tokens at every shape (120 x 8 x 256 = 246 k): short runs favour high rates, so a sweep that gave
# the wide shapes fewer steps could not tell a drift with width from a drift with run length.
STEPS = {"2x128": 120, "6x384": 120, "8x512": 120}


def best(runs: list[dict], key: str) -> dict | None:
    done = [r for r in runs if r["final_val_loss"] is not None]
    return min(done, key=lambda r: r["final_val_loss"]) if done else None


def table(report: dict) -> str:
    runs = list(report["shapes"].values())  # the union over shapes: a resumed shape may have more
    mults = sorted({r["lr_mult"] for s in runs for r in s["ours"]})
    lrs = sorted({r["lr"] for s in runs for r in s["baseline"]})
    fmt = lambda v: "  div " if v is None else f"{v:6.3f}"  # noqa: E731
    head = "shape   steps | ours x" + " ".join(f"{m:<6g}" for m in mults) + "| best | baseline lr " + \
        " ".join(f"{lr:<6g}" for lr in lrs) + "| best"
    lines = [head]
    for name, s in report["shapes"].items():
        o = {r["lr_mult"]: r["final_val_loss"] for r in s["ours"]}
        b = {r["lr"]: r["final_val_loss"] for r in s["baseline"]}
        bo, bb = best(s["ours"], "lr_mult"), best(s["baseline"], "lr")
        lines.append(f"{name:7s} {s['steps']:5d} |        " + " ".join(fmt(o[m]) if m in o else "   -  " for m in mults)
                     + (f"| x{bo['lr_mult']:<4g}" if bo else "| -    ")
                     + "|            " + " ".join(fmt(b[lr]) if lr in b else "   -  " for lr in lrs) + (f"| {bb['lr']:g}" if bb else "| -"))
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_run_args(ap, "6x384=80")
    ap.add_argument("--mults", nargs="+", type=float, default=[0.5, 1.0, 2.0])
    ap.add_argument("--baseline-lrs", nargs="*", type=float, default=[5e-4, 1e-3, 2e-3, 4e-3])
    ap.add_argument("--evals", type=int, default=2, help="validations (evenly spaced, the last at the end)")
    ap.add_argument("--muon-mult", type=float, help="hold Muon's rate at this multiplier: --mults then "
                    "sweeps the AdamW groups alone (embeddings, gains); e.g. --out bench/results/lr_sweep_adamw_groups.json")
    ap.add_argument("--seed", type=int, help="the models' init seed (default: params.yaml's seed); the batches "
                    "stay the same. Another seed says how far apart two runs can land by chance")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--resume", action="store_true", help="keep the finished runs of --out that match "
                    "(shape, steps, multiplier or rate) and run only the rest")
    args = ap.parse_args()
    steps = setup_runs(args, STEPS)
    corpus_dir = real_text.prepare(vocab_size=8192)
    train, val, corpus = real_text.load_shards(corpus_dir)
    seed = load_seed() if args.seed is None else args.seed
    previous = read_json(args.out)["shapes"] if args.resume and args.out.exists() else {}
    report = {"corpus": {"name": "debian (tuning)", **corpus}, "lr_mults": args.mults, "muon_mult": args.muon_mult,
              "muon_width_rule": "none: Muon's shape adjustment sqrt(max(1, rows/cols)) only (lib.train.optim.muon)",
              "adamw_groups_width_rule": "embeddings, head, gains at rate * sqrt(width_mult) (lib.train.optim.role_groups)",
              "baseline_lrs": args.baseline_lrs, "seed": seed, "threads": args.threads,
              "val_windows": "lib.data.val_windows, spread", "val_batches": args.val_batches,
              "bits_per_token_per_nat": bits_per_nat(corpus),
              "shapes": {k: v for k, v in previous.items() if k not in args.shapes}}  # kept as they were
    for name in args.shapes:
        shape, n = SHAPES[name], steps[name]
        windows = TrainWindows(train, shape.seq_len, shape.batch, seed=0)  # the same batches for every run
        evaluate = evaluator(val, shape, args.val_batches)
        entry = report["shapes"][name] = {**shape_entry(shape, n), "ours": [], "baseline": []}
        makers = [("ours", lambda m=m: ours(shape, n, corpus["vocab_size"], windows, seed, lr_mult=m,
                                                muon_mult=args.muon_mult))
                  for m in args.mults]
        makers += [("baseline", lambda lr=lr: baseline(shape, n, corpus["vocab_size"], windows, seed, lr))
                   for lr in args.baseline_lrs]
        old = previous.get(name, {}) if previous.get(name, {}).get("steps") == n else {}
        done = {("ours", r["lr_mult"]): r for r in old.get("ours", [])}
        done.update({("baseline", r["lr"]): r for r in old.get("baseline", [])})
        keys = [("ours", m) for m in args.mults] + [("baseline", lr) for lr in args.baseline_lrs]
        for key, (kind, make) in zip(keys, makers):  # one run at a time: the sweep compares losses, not times
            if key in done:
                entry[kind].append(done[key])
                continue
            run: Trainee = make()
            train_together([run], n, args.evals, evaluate, initial=False,  # step 0: ~9.0 for every run
                           log=lambda s: print(f"{name} {s}", file=sys.stderr, flush=True))
            entry[kind].append(run.summary())
            del run
            write_json(args.out, report)
    report["shapes"] = {k: report["shapes"][k] for k in SHAPES if k in report["shapes"]}  # resumed: in order
    for entry in report["shapes"].values():  # every shape's, a kept one's too (it may come from a cut-short run)
        bo, bb = best(entry["ours"], "lr_mult"), best(entry["baseline"], "lr")
        entry["ours_best_mult"] = bo and bo["lr_mult"]
        entry["baseline_best_lr"] = bb and bb["lr"]
    report["same_best_mult_at_every_shape"] = len({s["ours_best_mult"] for s in report["shapes"].values()}) == 1
    write_json(args.out, report)
    print(table(report))
    print(json.dumps({k: {"ours_best_mult": s["ours_best_mult"], "baseline_best_lr": s["baseline_best_lr"]}
                      for k, s in report["shapes"].items()}))


if __name__ == "__main__":
    main()
