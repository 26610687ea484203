"""Stage scrape: fetch every source in params.yaml `scrape.sources` into data/raw/.

Writes data/raw/docs/<sha256>.<ext> (content-addressed), data/raw/manifest.jsonl (one record per
source item, failures included with their reason), the headline figures to metrics/scrape.json
and the per-type and per-reason counts to data/stats/scrape.json (lib/core/figures.py).
"""
from __future__ import annotations

import sys

from lib.core.errors import UserError
from lib.core.figures import write_figures
from lib.core.stage import run_stage, summary
from lib.core.params import load_section
from lib.engine import engine_for
from lib.scrape import ScrapeParams, scrape
from lib.scrape.run import skipped_kinds
from lib.scrape.tracked import check_tracked


def main() -> None:
    params = load_section("scrape", ScrapeParams)
    # dvc.yaml is read, not a dep: editing the scrape stage's deps reruns this stage anyway
    check_tracked(params.sources)
    engine = engine_for(params.workers)  # local files and datasets; web pages stay on this machine
    metrics, manifest = scrape(params, engine)
    write_figures("scrape", metrics)
    for label, count in metrics["skipped_by_patterns"].items():
        if count:
            print(f"scrape: {label}: {count} files left out by its include/exclude patterns "
                  f"({skipped_kinds(params.out_dir, label)}); names in {params.out_dir}/skipped.jsonl",
                  file=sys.stderr)
    failed = [rec for rec in manifest if rec["status"] == "failed"]
    for rec in failed[:20]:
        print(f"scrape: {rec['source']}: {rec['reason']}", file=sys.stderr)
    if len(failed) > 20:
        print(f"scrape: ... and {len(failed) - 20} more (see {params.out_dir}/manifest.jsonl)", file=sys.stderr)
    summary("scrape", f"{metrics['ok']} documents ok, {metrics['failed']} failed, {metrics['bytes']:,} bytes "
            f"on {engine.name}",
            params.out_dir, metrics["seconds"])
    if metrics["ok"] == 0:
        reasons = ", ".join(f"{k}: {v}" for k, v in metrics["failed_by_reason"].items()) or "no items"
        raise UserError(f"nothing was fetched from scrape.sources in params.yaml ({reasons}); "
                        f"check the paths and URLs (details in {params.out_dir}/manifest.jsonl)")


if __name__ == "__main__":
    run_stage(main)
