"""Command-line tools for people, behind one front door: `hpc-lm` (lib/cli/main.py, which lists
7 commands). Three live here (generate, chat, check, with what they share in lib/cli/common.py);
export, verify and import are lib/hf's (export.py, verify.py, import_.py) and report is
lib/report's (cli.py). `python -m lib.cli` is the same front door."""
