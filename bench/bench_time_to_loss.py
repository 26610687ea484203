"""Time to loss: the SHIPPED recipe against the nanoGPT-style baseline at its best swept rate, at
three shapes, on a real-text corpus neither was tuned on.

Ours is params.yaml's pretrain section at each shape, built by the stage's own builders
(bench/shipped.py: only the shape and the step count overridden). The baseline is
bench/baseline_gpt.py (nanoGPT's GPT-2, AdamW, cosine to lr/10) at the peak rate that won
bench_lr_sweep at that shape (bench/results/lr_sweep.json; ``--baseline-lr SHAPE=LR`` to override).
Shapes 2x128, 6x384, 8x512 (head size 64), sequence 256, batch 8, fp32 on CPU.

Equal steps, tokens and batch: both see the same batches in the same order
(lib.data.windows.TrainWindows, seed 0) for the same number of steps, each with its own schedule
run to that step count, and are validated at the same steps on the same val windows, spread over
the split (lib.data.val_windows). Throwaway copies of both take a few untimed steps first
(bench.runs.warm_up). The two runs alternate step by step, so a load change on a shared
machine lands on both alike, and each step's wall time is kept (evaluation not counted).

Reported per shape: the baseline's final val loss (the target); the token ratio (our tokens to
reach the target / the baseline's tokens, interpolated between validations); the per-step wall
ratio (our median step / the baseline's, same process, same load); the time ratio = token ratio x
per-step ratio; the speedup = 1 / time ratio (goal >= 2.5). The wall-clock ratio reads the same off the
clocks: our summed step times up to the target over the baseline's whole run. Curves: one JSON per corpus in bench/results (time_to_loss_books.json).

REPORTING corpus: ``--corpus books`` (bench/real_text.py: public-domain books packed by our own
tokenizer and pack code); ``--corpus debian`` is the sweep's tuning corpus.

    nice uv run python -m bench.bench_time_to_loss --corpus books
    nice uv run python -m bench.bench_time_to_loss --corpus books --shapes 2x128 --steps 2x128=100   # a quick look
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import real_text  # noqa: E402
from bench.baseline_gpt import NANOGPT  # noqa: E402
from bench.runs import (Trainee, add_run_args, baseline, bits_per_nat, evaluator, ours,  # noqa: E402
                        setup_runs, shape_entry, time_to, train_together, warm_up)
from bench.shipped import SHAPES  # noqa: E402
from lib.core.io import read_json, write_json  # noqa: E402
from lib.core.params import load_seed  # noqa: E402
from lib.data.windows import TrainWindows  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
# the sweep's equal tokens at every shape (120 x 8 x 256), the run length the baseline's rate won at;
# ~14 min in all on 2 idle cores, 2 threads
STEPS = {"2x128": 120, "6x384": 120, "8x512": 120}


def swept_baseline_lrs(path: Path = RESULTS / "lr_sweep.json") -> dict[str, float]:
    """shape -> the baseline's best peak rate in the sweep (nanoGPT's 1e-3 where none was swept)."""
    shapes = read_json(path)["shapes"] if path.exists() else {}
    return {name: shapes.get(name, {}).get("baseline_best_lr") or NANOGPT["lr"] for name in SHAPES}


def compare(mine: Trainee, base: Trainee) -> dict:
    """The time-to-loss figures of one shape (see the module docstring)."""
    target = base.curve[-1]["val_loss"]
    ours_tokens = time_to(mine.curve, target, "tokens")
    token_ratio = None if ours_tokens is None else ours_tokens / base.tokens
    o, b = mine.summary(), base.summary()
    step_ratio = o["median_step_s"] / b["median_step_s"]
    time_ratio = None if token_ratio is None else token_ratio * step_ratio
    # the same from the clocks themselves: our summed step walls up to the target over the baseline's
    ours_wall = time_to(mine.curve, target, "train_s")
    wall_ratio = None if ours_wall is None else ours_wall / base.curve[-1]["train_s"]
    return {"target_baseline_final_val_loss": target, "ours_final_val_loss": o["final_val_loss"],
            "ours_tokens_to_target": ours_tokens, "token_ratio": None if token_ratio is None else round(token_ratio, 3),
            "per_step_wall_ratio": round(step_ratio, 3),
            "per_step_cpu_ratio": round(o["median_step_cpu_s"] / b["median_step_cpu_s"], 3),
            "time_ratio": None if time_ratio is None else round(time_ratio, 3),
            "ours_wall_s_to_target": ours_wall, "baseline_wall_s": base.curve[-1]["train_s"],
            "wall_clock_ratio": None if wall_ratio is None else round(wall_ratio, 3),
            "speedup": None if not time_ratio else round(1 / time_ratio, 2),
            "ours": o, "baseline": b}


def table(report: dict) -> str:
    lines = [f"corpus {report['corpus']['corpus']}: equal steps, tokens and batch (8 x 256)",
             "shape   steps  baseline lr  val loss ours/base  token ratio  step ratio  time ratio  wall ratio  speedup"]
    for name, s in report["shapes"].items():
        f = lambda v, w=6: "   -  " if v is None else f"{v:{w}.3f}"  # noqa: E731
        lines.append(f"{name:7s} {s['steps']:5d}  {s['baseline']['lr']:<11g}  {s['ours_final_val_loss']:.3f} / "
                     f"{s['target_baseline_final_val_loss']:.3f}     {f(s['token_ratio'])}      "
                     f"{f(s['per_step_wall_ratio'])}     {f(s['time_ratio'])}     {f(s['wall_clock_ratio'])}     "
                     f"{'-' if s['speedup'] is None else s['speedup']}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", choices=real_text.CORPORA, default="books")
    ap.add_argument("--books-dir", type=Path, default=real_text.BOOKS)
    add_run_args(ap, "6x384=200")
    ap.add_argument("--baseline-lr", nargs="*", default=[], help="SHAPE=LR overrides of the swept best")
    ap.add_argument("--evals", type=int, default=8, help="validations after step 0, evenly spaced")
    ap.add_argument("--out", type=Path, help="default bench/results/time_to_loss_<corpus>.json")
    args = ap.parse_args()
    steps = setup_runs(args, STEPS)
    lrs = {**swept_baseline_lrs(), **{k: float(v) for k, v in (s.split("=") for s in args.baseline_lr)}}
    out = args.out or RESULTS / f"time_to_loss_{args.corpus}.json"
    train, val, corpus = real_text.load_shards(real_text.prepare(vocab_size=8192, corpus=args.corpus,
                                                                 books=args.books_dir))
    seed = load_seed()
    report = {"goal": "speedup >= 2.5 (the baseline's final val loss in <= 0.4 of its time)",
              "budget": "equal steps, tokens and batch", "corpus": corpus, "threads": args.threads,
              "bits_per_token_per_nat": bits_per_nat(corpus),
              "val_batches": args.val_batches, "seed": seed, "shapes": {}}
    for name in args.shapes:
        shape, n = SHAPES[name], steps[name]
        windows = TrainWindows(train, shape.seq_len, shape.batch, seed=0)
        makers = [lambda: ours(shape, n, corpus["vocab_size"], windows, seed),
                  lambda: baseline(shape, n, corpus["vocab_size"], windows, seed, lrs[name])]
        warm_up(makers)  # untimed: the timed runs start on touched memory
        runs = [make() for make in makers]
        train_together(runs, n, args.evals, evaluator(val, shape, args.val_batches),
                       log=lambda s: print(f"{name} {s}", file=sys.stderr, flush=True))
        report["shapes"][name] = {**shape_entry(shape, n), **compare(*runs)}
        write_json(out, report)
    print(table(report))
    print(json.dumps({k: {q: s[q] for q in ("token_ratio", "per_step_wall_ratio", "time_ratio", "wall_clock_ratio", "speedup")}
                      for k, s in report["shapes"].items()}))


if __name__ == "__main__":
    main()
