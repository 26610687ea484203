"""Serve a trained model over the OpenAI HTTP API, with a web chat page at /.

    uv run hpc-lm serve --model models/sft                 # http://127.0.0.1:8000/
    uv run hpc-lm serve --model models/hf/sft --port 8080  # a Hugging Face export directory
    HPCLM_API_KEY=secret uv run hpc-lm serve --host 0.0.0.0

Endpoints: POST /v1/chat/completions, POST /v1/completions (both streaming or not), GET /v1/models,
GET /health. Concurrent requests share one continuously batched generation (lib/serve/engine.py).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Sequence

from lib.cli.common import positive_int, run_cli
from lib.core.errors import UserError

LOOPBACK = ("127.0.0.1", "localhost", "::1")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="hpc-lm serve", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="models/sft", help="our model directory or an HF export (default: models/sft)")
    p.add_argument("--tokenizer", default="models/tokenizer",
                   help="tokenizer directory for a model of ours (an HF export carries its own)")
    p.add_argument("--name", help="the model id clients send (default: the model directory's name)")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", default=os.environ.get("HPCLM_API_KEY"),
                   help="require `Authorization: Bearer KEY` on every path (default: $HPCLM_API_KEY)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--max-batch", type=positive_int, default=32, help="most requests generated at once")
    p.add_argument("--max-body", type=positive_int, default=1 << 20, help="largest request body in bytes")
    return p


def build(args: argparse.Namespace):
    """The ASGI app for ``args`` (tests call this and run it in their own uvicorn)."""
    import torch

    from lib.serve.app import Served, create_app
    from lib.serve.engine import Engine
    from lib.serve.loading import load_served

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = "cuda" if args.device == "auto" and torch.cuda.is_available() else args.device.replace("auto", "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available; use --device cpu")
    model, tokenizer = load_served(args.model, args.tokenizer, device)
    name = args.name or Path(args.model).resolve().name
    return create_app(Served(name, Engine(model, args.max_batch), tokenizer, args.api_key, args.max_body))


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    args = parser().parse_args(argv)
    if args.host not in LOOPBACK:
        print(f"warning: --host {args.host} serves this model to other machines"
              f"{'' if args.api_key else ' with no --api-key: anyone who can reach it can use it'}",
              file=sys.stderr)
    app = build(args)
    print(f"serving {app.state.served.name} on http://{args.host}:{args.port}/ (OpenAI API under /v1)",
          file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    run_cli(main)
