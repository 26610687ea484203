"""Compare two runs -- commits, branches, tags, DVC experiments or the workspace -- in one file.

    uv run hpc-lm report [--a REV] [--b REV] [-o report.html | -o report.md] [--all]

The report holds the params diff, the metrics diff, the training curves of both runs overlaid,
the sample generations side by side and B's model x suite table (lib/report/suites.py), which is
also printed. Timing fields are listed apart and never counted as changes; a suite whose file
changed is shown as not comparable, never as a delta. Unchanged params and metrics are counted, not listed,
unless --all; a change is coloured better or worse where the metric's direction is known. HTML is one self-contained page (inline CSS and SVG,
no JavaScript, nothing fetched); Markdown has the same sections with curves summarised as
first/last/min values. A file missing at one revision is shown as absent; an unknown revision
stops with one message. Collection lives in lib/report/data.py, rendering in lib/report/render.py.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Sequence

from lib.core.io import atomic_write_text
from lib.report.data import WORKSPACE, Report, build
from lib.report.render import counts_line, render_html, render_markdown, suites_markdown


def write(report: Report, out: str | Path) -> None:
    out = Path(out)
    text = render_markdown(report) if out.suffix.lower() in (".md", ".markdown") else render_html(report)
    atomic_write_text(out, text)  # with the permissions the umask gives, like any file


def main(argv: Sequence[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--a", default="HEAD", metavar="REV",
                   help="baseline: commit, branch, tag, DVC experiment or 'workspace' (default: HEAD)")
    p.add_argument("--b", default=WORKSPACE, metavar="REV",
                   help="compared run, same forms (default: workspace)")
    p.add_argument("-o", "--output", default="report.html",
                   help="output file; .md gives Markdown, anything else HTML (default: report.html)")
    p.add_argument("--repo", default=".", help="the DVC repository (default: the current directory)")
    p.add_argument("--all", action="store_true", dest="show_all", help="list unchanged params and metrics too")
    args = p.parse_args(argv)
    report = build(args.repo, args.a, args.b, args.show_all)
    write(report, args.output)
    print(f"wrote {args.output}: {report.a.label} vs {report.b.label}, {counts_line(report)}")
    if report.suites is not None:  # the model x suite table of B, for the terminal too
        print("\n".join(suites_markdown(report.suites, html=False)).rstrip())

