r"""Chat with a trained model in the terminal; replies stream as they are generated.

    uv run hpc-lm chat --model models/sft
    printf 'What is MPI?\nAnd OpenMP?\n' | uv run hpc-lm chat   # scripted, one turn per line

Each line you type is a user turn; the whole conversation is kept in the chat template (the
oldest turns are left out when it outgrows the model's context). Commands: /help lists them,
/reset starts over, /quit (or end of input) leaves; Ctrl-C stops a reply. A line that starts with
"/" is never sent to the model: an unknown command says so. With stdin not a terminal (a pipe, a test)
there are no prompts: each reply is printed on its own line.
"""
from __future__ import annotations

import sys
from typing import Sequence, TextIO

from lib.tokenizer.chat import Message, prompt_ids
from lib.cli.common import load, parser, run_cli, stream_reply

HELP = "commands: /help shows this, /reset starts over, /quit leaves (so does end of input)"


def main(argv: Sequence[str] | None = None, stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--system", help="a system message that opens the conversation")
    args = p.parse_args(argv)
    stdin, stdout = stdin or sys.stdin, stdout or sys.stdout
    model, tokenizer = load(args)
    interactive = stdin.isatty()
    system = [Message("system", args.system)] if args.system else []
    messages = list(system)
    stop_ids = {tokenizer.marker("end"), tokenizer.eos_id}
    # leave room for a reply, but never so much that no prompt fits
    reserve = min(args.max_new_tokens, model.cfg.max_seq_len // 2)
    if interactive:
        stdout.write(f"chatting with {args.model} -- /help lists the commands\n")
    while True:
        line = _read_line(stdin, stdout, interactive)
        if line is None:  # end of input
            break
        text = line.strip()
        if not text:
            continue
        if text.startswith("/"):  # a command, never a turn for the model
            command = _command(text, stdout if interactive else sys.stderr)
            if command == "quit":
                break
            if command == "reset":
                messages = list(system)
            continue
        messages.append(Message("user", text))
        if interactive:
            stdout.write("bot> ")
        prompt = prompt_ids(tokenizer, messages, model.cfg.max_seq_len, reserve)
        try:
            reply = stream_reply(model, tokenizer, prompt, args, stdout, stop_ids)
        except KeyboardInterrupt:  # Ctrl-C stops a reply, not the chat; the unanswered turn is forgotten
            if not interactive:
                raise
            stdout.write(" (interrupted)\n")
            messages.pop()
            continue
        stdout.write("\n")
        stdout.flush()
        messages.append(Message("assistant", reply))
    return 0


def _command(text: str, out: TextIO) -> str | None:
    """'quit', 'reset' or None (help shown, or an unknown command named) for a line starting with /.
    Notes go to the terminal, or to stderr in a scripted chat so stdout holds only replies."""
    name = text.split()[0]
    if name in ("/quit", "/exit"):
        return "quit"
    if name == "/reset":
        out.write("(conversation cleared)\n")
        return "reset"
    out.write(("" if name in ("/help", "/?") else f"unknown command {name}; ") + HELP + "\n")
    out.flush()
    return None


def _read_line(stdin: TextIO, stdout: TextIO, interactive: bool) -> str | None:
    if interactive and stdin is sys.stdin and stdout is sys.stdout:
        try:
            return input("you> ")  # line editing and history where readline is available
        except EOFError:
            stdout.write("\n")
            return None
    if interactive:
        stdout.write("you> ")
        stdout.flush()
    return stdin.readline() or None


if __name__ == "__main__":  # the old entry point; `hpc-lm chat` is the front door
    run_cli(main)
