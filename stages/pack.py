"""pack: encode the corpus splits into memory-mapped token shards with a document index."""
import time
from pathlib import Path

from lib.core.figures import write_figures
from lib.core.stage import run_stage, summary
from lib.core.io import atomic_path, write_json
from lib.data.pack import PackParams, pack_meta, pack_split, token_dtype
from lib.core.params import load_section
from lib.data.shards import META_FILE
from lib.engine import engine_for
from lib.tokenizer import Tokenizer

CORPUS = Path("data/corpus")
OUT = Path("data/shards")


def main() -> None:
    started = time.perf_counter()
    params = load_section("pack", PackParams)
    tokenizer = Tokenizer.load("models/tokenizer")
    token_dtype(tokenizer.vocab_size, params.dtype)  # before any work: a vocab too large for pack.dtype stops here
    meta = pack_meta(tokenizer, params)
    engine = engine_for(params.workers)
    with atomic_path(OUT) as tmp:  # the whole directory appears at once, meta.json included
        for split in ("train", "val"):
            meta["splits"][split] = pack_split(CORPUS / f"{split}.jsonl", tmp / split, tokenizer, params, engine=engine)
        write_json(tmp / META_FILE, meta)
    metrics = {split: {"tokens": s["tokens"], "docs": s["docs"], "shards": len(s["shards"]),
                       "text_bytes": s["text_bytes"]} for split, s in meta["splits"].items()}
    metrics["seconds"] = round(time.perf_counter() - started, 2)
    write_figures("pack", metrics)
    train, val = metrics["train"], metrics["val"]
    summary("pack", f"{train['tokens']:,} train / {val['tokens']:,} val tokens in "
            f"{train['shards'] + val['shards']} {params.dtype} shards on {engine.name}", str(OUT), metrics["seconds"])


if __name__ == "__main__":
    run_stage(main)
