"""export (optional, off the default `dvc repro` path): the trained models as Hugging Face Llama
directories -- models/hf/pretrain and models/hf/sft -- that transformers, lm-evaluation-harness,
vLLM and llama.cpp's converter load. See lib/hf/export.py for the files written.

    python -m stages.export [--models pretrain sft] [--dtype float32]
"""
import argparse
import time
from pathlib import Path

from lib.core.stage import run_stage, summary
from lib.hf.export import DTYPES, export_model
from lib.core.io import write_json

MODELS = ("pretrain", "sft")
TOKENIZER = Path("models/tokenizer")
OUT = Path("models/hf")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m stages.export", description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    ap.add_argument("--dtype", choices=sorted(DTYPES), default="float32")
    args = ap.parse_args(argv)
    start = time.perf_counter()
    metrics = {name: export_model(Path("models") / name, TOKENIZER, OUT / name, args.dtype) for name in args.models}
    metrics["seconds"] = round(time.perf_counter() - start, 2)
    write_json("metrics/export.json", metrics)
    summary("export", ", ".join(f"{name} {metrics[name]['parameters']:,} parameters" for name in args.models)
            + f" ({args.dtype})", ", ".join(str(OUT / name) for name in args.models), metrics["seconds"])


if __name__ == "__main__":
    run_stage(main)
