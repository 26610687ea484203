"""What the command-line tools share: model/tokenizer/sampling flags, loading, streamed output.

torch and the model code are imported inside the functions that need them, so ``--help`` and a
bad flag answer at once instead of after the seconds torch takes to import.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Sequence, TextIO

from lib.core.errors import UserError
from lib.core.stage import run_stage

if TYPE_CHECKING:
    from lib.infer.sampling import SamplingParams
    from lib.model.gpt import GPT
    from lib.tokenizer import Tokenizer


def positive_int(text: str) -> int:
    """argparse type for counts such as --max-new-tokens: a bad value is a usage error (exit 2)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def parser(description: str, prog: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=description)
    p.add_argument("--model", default="models/sft", help="model directory (default: models/sft)")
    p.add_argument("--tokenizer", default="models/tokenizer", help="tokenizer directory or .model file "
                   "(default: models/tokenizer)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    p.add_argument("--params", default="params.yaml",
                   help="params file whose attention: section sets the provider, cache and limits")
    g = p.add_argument_group("sampling")
    g.add_argument("--max-new-tokens", type=positive_int, default=128)
    g.add_argument("--temperature", type=float, default=0.0, help="0 = greedy (default)")
    g.add_argument("--top-k", type=int, default=0, help="keep the k most likely tokens (0 = off)")
    g.add_argument("--top-p", type=float, default=1.0, help="nucleus: smallest set with this mass (1 = off)")
    g.add_argument("--repetition-penalty", type=float, default=1.0, help="> 1 discourages repeats (1 = off)")
    g.add_argument("--stop", action="append", default=[], metavar="TEXT",
                   help="stop when this text appears (repeatable)")
    g.add_argument("--seed", type=int, default=0)
    return p


def sampling_params(args: argparse.Namespace) -> SamplingParams:
    from lib.infer.sampling import SamplingParams
    try:
        return SamplingParams(args.temperature, args.top_k, args.top_p, args.repetition_penalty)
    except ValueError as err:
        raise UserError(f"--{str(err).replace('_', '-')}") from None


def load(args: argparse.Namespace) -> tuple[GPT, Tokenizer]:
    import torch

    from lib.attention import attention_for_model, wrap_for_external
    from lib.model.checkpoint import load_model
    from lib.tokenizer import Tokenizer

    if args.threads > 0:
        torch.set_num_threads(args.threads)
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("--device cuda: no CUDA device is available; use --device cpu")
    if not Path(args.model).is_dir():
        raise UserError(f"{args.model}: model directory not found; train one with `dvc repro` or pass --model DIR")
    tokenizer = Tokenizer.load(args.tokenizer)
    model = load_model(args.model, device, tokenizer.sha256)
    wrap_for_external(model, attention_for_model(args.model, args.params), tokenizer)  # as it was trained
    return model.eval(), tokenizer


def stream_reply(model: GPT, tokenizer: Tokenizer, prompt: list[int], args: argparse.Namespace,
                 out: TextIO, stop_ids: set[int]) -> str:
    """Generate after ``prompt``, writing text to ``out`` as it is produced; returns the text."""
    from lib.infer.generate import StreamDecoder, stream
    decoder = StreamDecoder(tokenizer, args.stop)
    for token in stream(model, prompt, args.max_new_tokens, stop_ids, sampling_params(args), args.seed,
                        args.stop, tokenizer):
        piece = decoder.push(token)
        if piece:
            out.write(piece)
            out.flush()
        if decoder.stopped:
            break
    out.write(decoder.flush())
    out.flush()
    return decoder.text


def run_cli(main: Callable[[Sequence[str] | None], int], argv: Sequence[str] | None = None) -> None:
    """Entry point of a command: the stage runner's handling (a UserError is one line on stderr and
    exit status 2, Ctrl-C is 130), and ``main``'s return value is the exit status."""
    run_stage(lambda: main(argv))
