"""pretrain: train the decoder-only transformer on the packed shards; keep the best-by-val weights."""
from dataclasses import replace
from pathlib import Path

from lib.checkpoint import save_model
from lib.data import TrainWindows, val_windows
from lib.errors import run_stage
from lib.evaluate import bits_per_byte, unigram_entropy
from lib.io import read_json, write_csv, write_json
from lib.model import GPT
from lib.params import load_section, load_seed
from lib.pretrain import PretrainParams, run_key
from lib.runtime import setup_torch
from lib.shards import META_FILE, concat_tokens, open_split
from lib.tokenizer import Tokenizer
from lib.train import mean_loss, train

SHARDS = Path("data/shards")
OUT = Path("models/pretrain")
STATE = Path("checkpoints/pretrain/state.pt")  # resumable state: git-ignored, not a DVC output
PLOTS = Path("metrics/plots/pretrain")


def main() -> None:
    params, seed = load_section("pretrain", PretrainParams), load_seed()
    device = setup_torch(params.device, params.threads, seed)
    tokenizer = Tokenizer.load("models/tokenizer")
    train_shards = open_split(SHARDS / "train", tokenizer.sha256)
    val_shards = open_split(SHARDS / "val", tokenizer.sha256)
    meta = read_json(SHARDS / META_FILE)

    model = GPT(replace(params.model, vocab_size=tokenizer.vocab_size)).to(device)
    windows = TrainWindows(train_shards, params.seq_len, params.batch_size, seed)

    def evaluate() -> float:
        return mean_loss(model, val_windows(val_shards, params.seq_len, params.batch_size, params.eval_batches), device)

    key = run_key(params, seed, tokenizer.sha256, *(s["sha256"] for s in meta["splits"]["train"]["shards"]))
    result = train(model, params.loop(), device, windows.batch, evaluate, STATE, key, "pretrain")

    model.load_state_dict(result.best_model)
    save_model(OUT, model, tokenizer.sha256, {"stage": "pretrain", "best_step": result.best_step})
    write_csv(PLOTS / "train.csv", ["step", "tokens", "train_loss", "lr", "grad_norm"], result.train_curve)
    write_csv(PLOTS / "val.csv", ["step", "tokens", "val_loss"], result.val_curve)
    val = meta["splits"]["val"]
    write_json("metrics/pretrain.json", {
        "params": model.num_params(),
        "flops_per_token": model.flops_per_token(params.seq_len),
        "steps": params.steps,
        "tokens_seen": result.tokens,
        "best_step": result.best_step,
        "best_val_loss": round(result.best_val_loss, 4),
        "final_val_loss": round(result.final_val_loss, 4),
        "final_train_loss": round(result.final_train_loss, 4),
        "val_unigram_entropy": round(unigram_entropy(concat_tokens(val_shards)), 4),
        "best_val_bpb": round(bits_per_byte(result.best_val_loss, val["tokens"], val["text_bytes"]), 4),
        "tokens_per_s": round(result.tokens_per_s, 1),
        "seconds": round(result.seconds, 1),
        "resumed_from_step": result.resumed_from,
    })


if __name__ == "__main__":
    run_stage(main)
