"""python -m lib.report: the comparison report command (see lib/report/cli.py); `hpc-lm report`
is the front door."""
from lib.core.stage import run_stage
from lib.report.cli import main

run_stage(main)
