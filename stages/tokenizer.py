"""tokenizer: train SentencePiece BPE on the corpus train split, keeping domain terms whole -- or,
with ``tokenizer.source: base``, take the base model's tokenizer (``pretrain.init``) and add the
domain terms it splits as new tokens after its own ids."""
import time
from pathlib import Path

from lib.core.errors import UserError
from lib.core.figures import write_figures
from lib.core.stage import run_stage, summary
from lib.core.io import atomic_path, iter_jsonl
from lib.core.params import load_section, load_seed, read_params
from lib.tokenizer import VOCAB_FILE, Tokenizer
from lib.engine import engine_for
from lib.tokenizer.build import TokenizerParams, extend_base, train_on_sample
from lib.tokenizer.sample_corpus import sample_corpus
from lib.tokenizer.stats import tokenizer_metrics

CORPUS = Path("data/corpus")
OUT = Path("models/tokenizer")


def base_tokenizer(terms: list[str]) -> tuple[bytes, dict]:
    """pretrain.init's tokenizer with ``terms`` added; figures include the base's own on val."""
    from lib.hf.base import load_base_tokenizer, resolve_init  # transformers only on this path
    init = (read_params().get("pretrain") or {}).get("init", "scratch")
    source = resolve_init(str(init))
    if source is None:
        raise UserError("params.yaml: tokenizer.source: base needs pretrain.init to name a base model "
                        "(it is 'scratch'); see README: adapt a pretrained model")
    tokenizer_json, special = load_base_tokenizer(source)
    model_bytes, figures = extend_base(tokenizer_json, special, terms)
    before = Tokenizer(extend_base(tokenizer_json, special, [])[0])  # the base plus chat markers only
    val_texts = (doc["text"] for _, doc in iter_jsonl(CORPUS / "val.jsonl"))
    return model_bytes, {**figures, "base": tokenizer_metrics(before, val_texts, terms)}


def main() -> None:
    params = load_section("tokenizer", TokenizerParams)
    terms_file = CORPUS / "terms.txt"
    if not terms_file.exists():
        raise UserError(f"{terms_file}: not found; run `dvc repro corpus` first")
    terms = [t.strip() for t in terms_file.read_text(encoding="utf-8").splitlines() if t.strip()]
    all_terms = list(params.user_symbols) + terms
    started = time.perf_counter()
    where = ""
    if params.source == "base":
        model_bytes, extra = base_tokenizer(all_terms)
    else:
        seed, engine = load_seed(), engine_for(params.num_threads)
        sample = sample_corpus(CORPUS / "train.jsonl", params.input_sentence_size, params.sentence_bytes, seed, engine)
        model_bytes, extra = train_on_sample(sample, params, terms, seed), {"sample_pieces": len(sample)}
        where = f", input sampled on {engine.name}"
    seconds = time.perf_counter() - started
    tokenizer = Tokenizer(model_bytes)
    with atomic_path(OUT) as tmp:
        tmp.mkdir(parents=True)
        (tmp / tokenizer.file_name).write_bytes(model_bytes)
        vocab = "".join(f"{tokenizer.piece(i)}\t{i}\n" for i in range(tokenizer.vocab_size))
        (tmp / VOCAB_FILE).write_text(vocab, encoding="utf-8")
    val_texts = (doc["text"] for _, doc in iter_jsonl(CORPUS / "val.jsonl"))
    metrics = tokenizer_metrics(tokenizer, val_texts, all_terms)
    write_figures("tokenizer", {"source": params.source, **metrics, **extra, "seconds": round(seconds, 2)})
    summary("tokenizer", f"{tokenizer.vocab_size} pieces, {metrics['val_bytes_per_token']:.2f} bytes/token and "
            f"{metrics['val_tokens_per_word']:.2f} tokens/word on val{where}", str(OUT), seconds)


if __name__ == "__main__":
    run_stage(main)
