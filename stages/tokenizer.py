"""tokenizer: train SentencePiece BPE on the corpus train split, keeping domain terms whole."""
import time
from pathlib import Path

from lib.core.errors import UserError
from lib.core.stage import run_stage
from lib.core.io import atomic_path, iter_jsonl, write_json
from lib.core.params import load_section, load_seed
from lib.tokenizer import MODEL_FILE, VOCAB_FILE, Tokenizer, TokenizerParams, train_tokenizer
from lib.tokenizer_stats import tokenizer_metrics

CORPUS = Path("data/corpus")
OUT = Path("models/tokenizer")


def main() -> None:
    params = load_section("tokenizer", TokenizerParams)
    terms_file = CORPUS / "terms.txt"
    if not terms_file.exists():
        raise UserError(f"{terms_file}: not found; run `dvc repro corpus` first")
    terms = [t.strip() for t in terms_file.read_text(encoding="utf-8").splitlines() if t.strip()]
    started = time.perf_counter()
    texts = (doc["text"] for _, doc in iter_jsonl(CORPUS / "train.jsonl"))  # streamed, sampled inside
    model_bytes = train_tokenizer(texts, params, terms, seed=load_seed())
    seconds = time.perf_counter() - started
    tokenizer = Tokenizer(model_bytes)
    with atomic_path(OUT) as tmp:
        tmp.mkdir(parents=True)
        (tmp / MODEL_FILE).write_bytes(model_bytes)
        vocab = "".join(f"{tokenizer.piece(i)}\t{i}\n" for i in range(tokenizer.vocab_size))
        (tmp / VOCAB_FILE).write_text(vocab, encoding="utf-8")
    val_texts = (doc["text"] for _, doc in iter_jsonl(CORPUS / "val.jsonl"))
    metrics = tokenizer_metrics(tokenizer, val_texts, list(params.user_symbols) + terms)
    write_json("metrics/tokenizer.json", {**metrics, "seconds": round(seconds, 2)})


if __name__ == "__main__":
    run_stage(main)
