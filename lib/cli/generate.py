"""Generate text from a prompt with a trained model, streamed to stdout.

    uv run hpc-lm generate --model models/sft --prompt "What is false sharing?"
    uv run hpc-lm generate --model models/pretrain --raw --prompt "MPI_Allreduce is"
    echo "What is NUMA?" | uv run hpc-lm generate --temperature 0.8 --top-p 0.9

By default the prompt is asked as a user turn in the chat template (as SFT trained it); --raw
continues the text as it is (for a base model).
"""
from __future__ import annotations

import sys
from typing import Sequence, TextIO

from lib.tokenizer.chat import Message, prompt_ids
from lib.cli.common import load, parser, run_cli, stream_reply
from lib.core.errors import UserError


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--prompt", help="the prompt (default: read from stdin)")
    p.add_argument("--system", help="a system message (chat template only)")
    p.add_argument("--raw", action="store_true", help="continue the prompt as plain text, no chat template")
    args = p.parse_args(argv)
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    text = args.prompt if args.prompt is not None else stdin.read()
    if not text.strip():
        raise UserError("empty prompt: pass --prompt TEXT or pipe text on stdin")
    model, tokenizer = load(args)
    if args.raw:
        if args.system:
            raise UserError("--system needs the chat template; drop --raw")
        prompt = [tokenizer.bos_id] + tokenizer.encode(text)
        stop_ids = {tokenizer.eos_id}
    else:
        messages = ([Message("system", args.system)] if args.system else []) + [Message("user", text.strip())]
        prompt = prompt_ids(tokenizer, messages)
        stop_ids = {tokenizer.marker("end"), tokenizer.eos_id}
    stream_reply(model, tokenizer, prompt, args, stdout, stop_ids)
    stdout.write("\n")
    return 0


if __name__ == "__main__":  # the old entry point; `hpc-lm generate` is the front door
    run_cli(main)
