"""Stage corpus: data/clean/docs.jsonl to data/corpus/{train,val}.jsonl and terms.txt.

The split is by a hash of each document's text (seeded), so adding a document never moves
another; terms.txt lists domain terms mined from the corpus for the tokenizer.
"""
from __future__ import annotations

import time

from lib.corpus import CorpusParams, build
from lib.core.figures import write_figures
from lib.core.stage import run_stage, summary
from lib.core.params import load_section, load_seed


def main() -> None:
    started = time.perf_counter()
    params = load_section("corpus", CorpusParams)
    metrics = build(params, load_seed())
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    write_figures("corpus", metrics)
    summary("corpus", f"{metrics['train']['docs']} train / {metrics['val']['docs']} val documents, "
            f"{metrics['terms']} domain terms", "data/corpus", metrics["seconds"])


if __name__ == "__main__":
    run_stage(main)
