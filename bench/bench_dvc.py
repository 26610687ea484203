"""How long a no-op `dvc status` and `dvc repro` take on the default pipeline (goal: < 2 s each).

Run after `uv run dvc repro` has completed:  uv run python bench/bench_dvc.py [--repeats 5]
The baseline, measured in the same run, is `dvc --version`: the fixed cost of starting DVC, so
the ratio shows what checking the pipeline itself adds. Prints one JSON object.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(args: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "dvc", *args], cwd=ROOT, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"dvc {' '.join(args)} failed:\n{proc.stdout}{proc.stderr}")
    return elapsed, proc.stdout + proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    _, status = timed(["status"])  # warm-up: page cache, .pyc files, DVC's state database
    if "up to date" not in status:
        sys.exit("the pipeline has pending changes: run `uv run dvc repro` first, then this benchmark")
    results = {}
    for name, cmd in [("dvc_version", ["--version"]), ("dvc_status", ["status"]), ("dvc_repro_noop", ["repro"])]:
        runs = [timed(cmd)[0] for _ in range(args.repeats)]
        results[name] = {"median_s": round(statistics.median(runs), 3), "min_s": round(min(runs), 3)}
    base = results["dvc_version"]["median_s"]
    for name in ("dvc_status", "dvc_repro_noop"):
        results[name]["ratio_to_startup"] = round(results[name]["median_s"] / base, 2)
        results[name]["goal_met"] = results[name]["median_s"] < 2.0
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
