"""Stage clean: data/raw/ (manifest + documents) to data/clean/docs.jsonl and rejects.jsonl.

Extraction (HTML main content, PDF layout), normalisation, quality/repetition/link-list/language
filters and exact + near-duplicate removal; every dropped document is recorded with its reason.
"""
from __future__ import annotations

import sys

from lib.clean import CleanParams, clean
from lib.core.errors import UserError
from lib.core.stage import run_stage
from lib.core.io import write_json
from lib.core.params import load_section
from lib.engine import engine_for


def main() -> None:
    params = load_section("clean", CleanParams)
    engine = engine_for(params.workers)
    metrics = clean(params, engine)
    write_json("metrics/clean.json", metrics)
    dropped = ", ".join(f"{k} {v}" for k, v in metrics["dropped"].items() if v) or "none"
    print(f"clean: kept {metrics['docs_kept']} of {metrics['docs_in']} documents "
          f"(dropped: {dropped}) in {metrics['seconds']} s on {engine.name}", file=sys.stderr)
    if metrics["docs_kept"] == 0:
        raise UserError("clean kept no documents; see data/clean/rejects.jsonl for the reasons and "
                        "relax the thresholds in params.yaml `clean:` if they are too strict")


if __name__ == "__main__":
    run_stage(main)
