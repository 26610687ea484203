"""Compare two runs -- commits, branches, tags, DVC experiments or the workspace -- in one file.

    uv run python -m lib.report [--a REV] [--b REV] [-o report.html | -o report.md]

The report holds the params diff, the metrics diff, the training curves of both runs overlaid
and the sample generations side by side. HTML is one self-contained page (inline CSS and SVG,
no JavaScript, nothing fetched); Markdown has the same sections with curves summarised as
first/last/min values. A file missing at one revision is shown as absent; an unknown revision
stops with one message. Collection lives in lib/report/data.py, rendering in lib/report/render.py.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Sequence

from lib.core.stage import run_stage
from lib.core.io import atomic_write_text
from lib.report.data import WORKSPACE, Report, build
from lib.report.render import render_html, render_markdown


def write(report: Report, out: str | Path) -> None:
    out = Path(out)
    text = render_markdown(report) if out.suffix.lower() in (".md", ".markdown") else render_html(report)
    atomic_write_text(out, text)
    # atomic writes create 0600 files; a report is meant to be opened and shared like any file
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out, 0o666 & ~umask)


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m lib.report", description=__doc__.split("\n\n")[0])
    p.add_argument("--a", default="HEAD", metavar="REV",
                   help="baseline: commit, branch, tag, DVC experiment or 'workspace' (default: HEAD)")
    p.add_argument("--b", default=WORKSPACE, metavar="REV",
                   help="compared run, same forms (default: workspace)")
    p.add_argument("-o", "--output", default="report.html",
                   help="output file; .md gives Markdown, anything else HTML (default: report.html)")
    p.add_argument("--repo", default=".", help="the DVC repository (default: the current directory)")
    p.add_argument("--all", action="store_true", dest="all_params", help="list unchanged params too")
    args = p.parse_args(argv)

    def run() -> None:
        report = build(args.repo, args.a, args.b, args.all_params)
        write(report, args.output)
        print(f"wrote {args.output}: {report.a.label} vs {report.b.label}")

    run_stage(run)

