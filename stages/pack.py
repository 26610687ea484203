"""pack: encode the corpus splits into memory-mapped token shards with a document index."""
from pathlib import Path

from lib.errors import run_stage
from lib.io import atomic_path, write_json
from lib.pack import PackParams, encoded_docs
from lib.params import load_section
from lib.shards import META_FILE, dtype_for_vocab, write_split
from lib.tokenizer import Tokenizer

CORPUS = Path("data/corpus")
OUT = Path("data/shards")


def main() -> None:
    params = load_section("pack", PackParams)
    tokenizer = Tokenizer.load("models/tokenizer")
    dtype_for_vocab(tokenizer.vocab_size, params.dtype)
    meta = {"vocab_size": tokenizer.vocab_size, "tokenizer_sha256": tokenizer.sha256, "dtype": params.dtype,
            "bos_id": tokenizer.bos_id, "eos_id": tokenizer.eos_id, "splits": {}}
    with atomic_path(OUT) as tmp:
        for split in ("train", "val"):
            stats = {"text_bytes": 0}
            docs = encoded_docs(tokenizer, CORPUS / f"{split}.jsonl", stats)
            info = write_split(tmp / split, docs, params.dtype, params.shard_tokens)
            meta["splits"][split] = {**info, **stats}
        write_json(tmp / META_FILE, meta)
    summary = {split: {"tokens": s["tokens"], "docs": s["docs"], "shards": len(s["shards"]),
                       "text_bytes": s["text_bytes"]} for split, s in meta["splits"].items()}
    write_json("metrics/pack.json", summary)


if __name__ == "__main__":
    run_stage(main)
