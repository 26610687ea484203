"""Import a Hugging Face Llama directory (one we exported, or any Llama our model can represent
with a tokenizer.model of ours) as a model directory of ours, and its tokenizer.

    uv run python -m lib.hf.import_ --hf-dir models/hf/sft --out models/imported/sft \
        [--tokenizer-out models/imported/tokenizer]

An exported model round-trips bit for bit: the weights are renamed back and the original
config, kept under "hpc_lm" in config.json, restores the training-only fields (dropout, init_std).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from safetensors import safe_open
from safetensors.torch import save_file

from lib.core.errors import UserError
from lib.core.stage import run_stage
from lib.hf import convert
from lib.core.io import atomic_path, read_json, write_json
from lib.model.config import ModelConfig
from lib.tokenizer import MODEL_FILE, Tokenizer

WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "model.safetensors.index.json"


def read_hf_weights(hf_dir: Path) -> dict:
    """All tensors of ``model.safetensors`` or of the shards listed in its index."""
    if (hf_dir / WEIGHTS_FILE).exists():
        files = [hf_dir / WEIGHTS_FILE]
    elif (hf_dir / INDEX_FILE).exists():
        files = [hf_dir / f for f in sorted(set(read_json(hf_dir / INDEX_FILE)["weight_map"].values()))]
    else:
        raise UserError(f"{hf_dir}: no {WEIGHTS_FILE} (or {INDEX_FILE}); only safetensors weights are read")
    state = {}
    for path in files:
        if not path.exists():
            raise UserError(f"{path}: weights shard not found")
        with safe_open(str(path), framework="pt") as f:
            for name in f.keys():
                state[name] = f.get_tensor(name)
    return state


def import_model(hf_dir: str | os.PathLike, out_dir: str | os.PathLike,
                 tokenizer_out: str | os.PathLike | None = None) -> dict:
    """Write our model directory ``out_dir`` (and the tokenizer to ``tokenizer_out``); returns the config."""
    hf_dir, out_dir = Path(hf_dir), Path(out_dir)
    if not hf_dir.is_dir():
        raise UserError(f"{hf_dir}: not a directory")
    hf_cfg = read_json(hf_dir / "config.json")
    where = str(hf_dir / "config.json")
    model_cfg = convert.model_config_from_hf(hf_cfg, [f.name for f in dataclasses.fields(ModelConfig)], where)
    try:
        ModelConfig(**model_cfg)
    except ValueError as err:
        raise UserError(f"{where}: not a valid model of ours: {err}") from None

    sp_path = hf_dir / MODEL_FILE
    if not sp_path.exists():
        raise UserError(f"{sp_path}: not found; import needs the SentencePiece model our tokenizer wraps "
                        f"(a directory written by `python -m lib.hf.export` has it)")
    sp_bytes = sp_path.read_bytes()
    tokenizer = Tokenizer(sp_bytes)  # checks the fixed special ids
    if tokenizer.vocab_size != model_cfg["vocab_size"]:
        raise UserError(f"{where}: vocab_size {model_cfg['vocab_size']} != {sp_path}'s {tokenizer.vocab_size}")

    state = read_hf_weights(hf_dir)
    weights = convert.from_hf_weights(state, model_cfg, str(hf_dir))
    weights = {k: v.contiguous() for k, v in sorted(weights.items())}
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        save_file(weights, str(tmp / WEIGHTS_FILE))
        write_json(tmp / "config.json", {"model": model_cfg, "tokenizer_sha256": tokenizer.sha256,
                                         "format": convert.FORMAT, "stage": "import"})
    if tokenizer_out is not None:
        with atomic_path(tokenizer_out) as tmp:
            tmp.mkdir(parents=True)
            (tmp / MODEL_FILE).write_bytes(sp_bytes)
    return model_cfg


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m lib.hf.import_", description=__doc__.split("\n\n")[0])
    ap.add_argument("--hf-dir", required=True, help="Hugging Face model directory (config.json, model.safetensors, "
                                                    "tokenizer.model)")
    ap.add_argument("--out", required=True, help="our model directory to write (replaced if present)")
    ap.add_argument("--tokenizer-out", help="also write the tokenizer directory (tokenizer.model) here")
    args = ap.parse_args(argv)
    cfg = import_model(args.hf_dir, args.out, args.tokenizer_out)
    print(f"wrote {args.out}: {cfg['n_layer']} layers, d_model {cfg['d_model']}, vocab {cfg['vocab_size']}")


if __name__ == "__main__":
    run_stage(main)
