"""Stage corpus: data/clean/docs.jsonl to data/corpus/{train,val,heldout}.jsonl, terms.txt,
contaminated.jsonl and the automatic domain cloze suite domain_cloze.jsonl.

The split is by a hash of each document's text (seeded), so adding a document never moves
another; terms.txt lists domain terms mined from the corpus for the tokenizer. Training documents
that share a 13-gram with an eval suite (eval.suites, eval.lambada_files) are removed or flagged.
"""
from __future__ import annotations

import time

from lib.corpus import CorpusParams, build
from lib.core.figures import write_figures
from lib.core.stage import run_stage, summary
from lib.core.params import load_section, load_seed
from lib.eval.decontam import eval_sources
from lib.eval.params import load_suite_params


def main() -> None:
    started = time.perf_counter()
    params = load_section("corpus", CorpusParams)
    suites = eval_sources(load_suite_params(), skip=[params.cloze_path])
    metrics = build(params, load_seed(), suites)
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    write_figures("corpus", metrics)
    summary("corpus", f"{metrics['train']['docs']} train / {metrics['val']['docs']} val / "
            f"{metrics['heldout']['docs']} held-out documents, {metrics['terms']} domain terms, "
            f"{metrics['decontam']['contaminated']} contaminated, "
            f"{metrics['domain_cloze']['passages']} cloze passages", "data/corpus", metrics["seconds"])


if __name__ == "__main__":
    run_stage(main)
