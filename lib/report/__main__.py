"""python -m lib.report: the comparison report command (see lib/report/cli.py)."""
from lib.report.cli import main

main()
