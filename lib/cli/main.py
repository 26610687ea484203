"""hpc-lm: the one front door to the project's commands (installed by [project.scripts]).

    uv run hpc-lm --help
    uv run hpc-lm chat --model models/sft
    uv run hpc-lm check

Each subcommand is one module's ``main(argv)``; the module is imported only when its command
runs, so ``hpc-lm --help`` answers without importing torch. The pipeline itself runs through
``dvc repro``; the old ``python -m`` entry points still work.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

from lib.core.stage import run_stage

# name -> (module whose main(argv) runs it, one line for --help)
COMMANDS: dict[str, tuple[str, str]] = {
    "generate": ("lib.cli.generate", "generate text from a prompt with a trained model, streamed"),
    "chat": ("lib.cli.chat", "chat with a trained model in the terminal (or through stdin)"),
    "serve": ("lib.cli.serve", "serve a model over the OpenAI HTTP API, with a web chat page"),
    "export": ("lib.hf.export", "write a model as a Hugging Face (Llama layout) directory, or a GGUF file (--format gguf)"),
    "verify": ("lib.hf.verify", "compare an exported Hugging Face model with ours: logits, greedy text, ids"),
    "import": ("lib.hf.import_", "read a Hugging Face Llama directory back into our format"),
    "report": ("lib.report.cli", "compare two runs (commits, branches, experiments) in one HTML/Markdown file"),
    "check": ("lib.cli.check", "check params.yaml as a whole: every section, key and type"),
}


def _parser() -> argparse.ArgumentParser:
    listing = "\n".join(f"  {name:<10} {line}" for name, (_, line) in COMMANDS.items())
    p = argparse.ArgumentParser(
        prog="hpc-lm", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Commands around the hpc-lm pipeline (the pipeline itself: `uv run dvc repro`).",
        epilog=f"commands:\n{listing}\n\n`hpc-lm COMMAND --help` shows a command's options.")
    p.add_argument("command", choices=COMMANDS, metavar="COMMAND", help="one of: " + ", ".join(COMMANDS))
    p.add_argument("args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    return p


def main(argv: Sequence[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in COMMANDS:  # --help, no command or a wrong one: argparse answers
        _parser().parse_args(argv or ["--help"])
        return
    name, rest = argv[0], argv[1:]
    module = importlib.import_module(COMMANDS[name][0])
    sys.argv[0] = f"hpc-lm {name}"  # the usage line of parsers that take their name from argv[0]
    run_stage(lambda: module.main(rest))


if __name__ == "__main__":
    main()
