"""Command-line tools for people, behind one front door: `hpc-lm` (lib/cli/main.py) with generate,
chat, export, verify, import, report and check; `python -m lib.cli` is the same."""
