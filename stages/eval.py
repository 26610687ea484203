"""eval: LAMBADA last-word accuracy and perplexity, val loss, perplexity and bits per byte for the
pretrained and SFT models; sample answers to fixed prompts."""
import math
from pathlib import Path

from lib.chat import Message, decode_reply, encode_chat
from lib.checkpoint import load_model
from lib.data import val_windows
from lib.errors import UserError, run_stage
from lib.evaluate import EvalParams, bits_per_byte, lambada_items, lambada_scores
from lib.generate import generate
from lib.io import read_json, write_json
from lib.params import load_section, load_seed
from lib.runtime import setup_torch
from lib.shards import META_FILE, open_split
from lib.tokenizer import Tokenizer
from lib.train import mean_loss

MODELS = {"pretrain": Path("models/pretrain"), "sft": Path("models/sft")}
SHARDS = Path("data/shards")


def main() -> None:
    params, seed = load_section("eval", EvalParams), load_seed()
    device = setup_torch(params.device, params.threads, seed)
    tokenizer = Tokenizer.load("models/tokenizer")
    val_shards = open_split(SHARDS / "val", tokenizer.sha256)
    val_meta = read_json(SHARDS / META_FILE)["splits"]["val"]
    prompts_path = Path(params.prompts)
    if not prompts_path.exists():
        raise UserError(f"{prompts_path}: prompts file not found (eval.prompts in params.yaml)")
    prompts = [p for p in prompts_path.read_text(encoding="utf-8").splitlines() if p.strip()]
    lambada = {Path(f).stem: lambada_items(Path(f), tokenizer, params.prepend_bos) for f in params.lambada_files}

    metrics, samples = {"settings": {"prepend_bos": params.prepend_bos}}, {}
    for name, path in MODELS.items():
        model = load_model(path, device, tokenizer.sha256)
        seq_len = model.cfg.max_seq_len
        val_loss = mean_loss(model, val_windows(val_shards, seq_len, params.batch_size, params.val_batches), device)
        metrics[name] = {
            "val_loss": round(val_loss, 4),
            "val_perplexity": round(math.exp(val_loss), 3),
            "val_bpb": round(bits_per_byte(val_loss, val_meta["tokens"], val_meta["text_bytes"]), 4),
            "lambada": {f: {k: round(v, 4) for k, v in lambada_scores(model, items, device, params.batch_size).items()}
                        for f, items in lambada.items()},
        }
        stop = {tokenizer.marker("end"), tokenizer.eos_id}
        samples[name] = {p: decode_reply(tokenizer, generate(model, encode_chat(
            tokenizer, [Message("user", p)], add_generation_prompt=True)[0], params.max_new_tokens, stop))
            for p in prompts}
    write_json("metrics/eval.json", metrics)
    write_json("metrics/samples.json", samples)


if __name__ == "__main__":
    run_stage(main)
