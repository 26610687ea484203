"""Stage scrape: fetch every source in params.yaml `scrape.sources` into data/raw/.

Writes data/raw/docs/<sha256>.<ext> (content-addressed), data/raw/manifest.jsonl (one record per
source item, failures included with their reason) and metrics/scrape.json.
"""
from __future__ import annotations

import sys

from lib.core.errors import UserError
from lib.core.stage import run_stage
from lib.core.io import write_json
from lib.core.params import load_section
from lib.scrape import ScrapeParams, scrape
from lib.scrape.run import skipped_kinds


def main() -> None:
    params = load_section("scrape", ScrapeParams)
    metrics, manifest = scrape(params)
    write_json("metrics/scrape.json", metrics)
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
    print(f"scrape: {metrics['ok']} ok, {metrics['failed']} failed, {metrics['bytes']} bytes "
          f"in {metrics['seconds']} s", file=sys.stderr)
    if metrics["ok"] == 0:
        reasons = ", ".join(f"{k}: {v}" for k, v in metrics["failed_by_reason"].items()) or "no items"
        raise UserError(f"nothing was fetched from scrape.sources in params.yaml ({reasons}); "
                        f"check the paths and URLs (details in {params.out_dir}/manifest.jsonl)")


if __name__ == "__main__":
    run_stage(main)
