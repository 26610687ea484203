"""Command-line tools for people: ``python -m lib.cli.generate`` and ``python -m lib.cli.chat``."""
