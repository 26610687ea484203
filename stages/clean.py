"""Stage clean: data/raw/ (manifest + documents) to data/clean/docs.jsonl and rejects.jsonl.

Extraction (HTML main content, PDF layout), normalisation, quality/repetition/link-list/language
filters and exact + near-duplicate removal; every dropped document is recorded with its reason.
"""
from __future__ import annotations

from lib.clean import CleanParams, clean
from lib.core.errors import UserError
from lib.core.figures import write_figures
from lib.core.stage import run_stage, summary
from lib.core.params import load_section
from lib.engine import engine_for


def main() -> None:
    params = load_section("clean", CleanParams)
    engine = engine_for(params.workers)
    metrics = clean(params, engine)
    write_figures("clean", metrics)  # per-rule and per-reason counts: data/stats/clean.json
    dropped = ", ".join(f"{k} {v}" for k, v in metrics["dropped"].items() if v) or "none"
    summary("clean", f"kept {metrics['docs_kept']} of {metrics['docs_in']} documents (dropped: {dropped}) on {engine.name}",
            params.out_dir, metrics["seconds"])
    if metrics["docs_kept"] == 0:
        raise UserError("clean kept no documents; see data/clean/rejects.jsonl for the reasons and "
                        "relax the thresholds in params.yaml `clean:` if they are too strict")


if __name__ == "__main__":
    run_stage(main)
