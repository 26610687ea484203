r"""Import a Hugging Face Llama directory or a GGUF file: as a base model to continue pretraining
(``pretrain.init``; ``init_model``) or, from the command line, as a model directory of ours.
Finding the base and reading its tokenizer is ``lib.hf.base``'s (no model code: the tokenizer
stage imports it). A GGUF file is read through transformers (a dev dependency), which
dequantizes it.

The command takes a Hugging Face Llama directory (one we exported, or any Llama our model can
represent with a tokenizer.model of ours) to a model directory of ours, and its tokenizer:

    uv run hpc-lm import --hf-dir models/hf/sft --out models/imported/sft \
        [--tokenizer-out models/imported/tokenizer]

An exported model round-trips bit for bit: the weights are renamed back and the original
config, kept under "hpc_lm" in config.json, restores the training-only fields (dropout, init_std).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

import torch
from safetensors import safe_open

from lib.core.errors import UserError
from lib.core.stage import run_stage
from lib.hf import convert
from lib.hf.base import BASE_DIR, SCRATCH, BaseSource, resolve_init, transformers_for
from lib.core.io import atomic_path, read_json
from lib.model.checkpoint import save_model
from lib.model.config import ModelConfig
from lib.model.gpt import GPT
from lib.model.vocab import grow_vocab
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

    model = build_model(model_cfg, convert.from_hf_weights(read_hf_weights(hf_dir), model_cfg, str(hf_dir)), where)
    save_model(out_dir, model, tokenizer.sha256, {"stage": "import"})
    if tokenizer_out is not None:
        with atomic_path(tokenizer_out) as tmp:
            tmp.mkdir(parents=True)
            (tmp / MODEL_FILE).write_bytes(sp_bytes)
    return model_cfg


def build_model(model_cfg: dict, weights: dict, where: str) -> GPT:
    """Our GPT holding ``weights`` (our tensor names); a tensor of the wrong shape stops."""
    try:
        model = GPT(ModelConfig(**model_cfg))
    except ValueError as err:
        raise UserError(f"{where}: not a valid model of ours: {err}") from None
    rows = weights["embed.weight"].shape[0]
    if rows != model_cfg["vocab_size"]:
        raise UserError(f"{where}: vocab/embedding size mismatch: vocab_size {model_cfg['vocab_size']} but "
                        f"the embedding has {rows} rows")
    try:
        model.load_state_dict({k: v.float() for k, v in weights.items()}, strict=False)
    except RuntimeError as err:
        raise UserError(f"{where}: weights do not fit the config: {str(err).splitlines()[-1].strip()}") from None
    return model


# ---- base models (pretrain.init; finding one and its tokenizer: lib/hf/base.py) -----------------

def load_base_weights(source: BaseSource) -> tuple[dict, dict, dict]:
    """(our model config, weights under our names, facts) of a base model.

    The base's RMSNorm epsilon (SmolLM2: 1e-5, ours 1e-6) travels in ``ModelConfig.norm_eps``, so the
    imported model computes what the base computes."""
    fields = [f.name for f in dataclasses.fields(ModelConfig)]
    if source.gguf is None:
        where = str(source.path / "config.json")
        hf_cfg = read_json(source.path / "config.json")
        convert.check_layout(hf_cfg, where)
        state = read_hf_weights(source.path)
    else:
        where = str(source.path / source.gguf)
        transformers = transformers_for("reading a GGUF base model", source)
        # transformers dequantizes the GGUF tensors and undoes llama.cpp's q/k permutation
        hf = transformers.AutoModelForCausalLM.from_pretrained(str(source.path), gguf_file=source.gguf,
                                                               dtype=torch.float32)
        hf_cfg, state = hf.config.to_dict(), hf.state_dict()
        convert.check_layout(hf_cfg, where)
    cfg = convert.model_config_from_hf(hf_cfg, fields, where)
    return cfg, convert.from_hf_weights(state, cfg, where), {}


def init_model(init: str, tokenizer: Tokenizer, scratch_cfg: ModelConfig,
               base_dir: Path | None = BASE_DIR) -> tuple[GPT, dict]:
    """The model pretraining starts from: fresh (``scratch``) or the imported base with its
    vocabulary grown by the tokenizer's added tokens. Returns (model, facts for metrics)."""
    source = resolve_init(init, base_dir)
    if source is None:
        return GPT(dataclasses.replace(scratch_cfg, vocab_size=tokenizer.vocab_size)), {"init": SCRATCH}
    if tokenizer.kind != "tokenizers":
        raise UserError(f"params.yaml: pretrain.init={init!r} is a base model but models/tokenizer was trained "
                        f"on the corpus; set tokenizer.source: base so model and tokenizer share ids")
    cfg, weights, facts = load_base_weights(source)
    where = str(source.path / (source.gguf or "config.json"))
    if cfg["vocab_size"] != tokenizer.base_vocab_size:
        raise UserError(f"{where}: vocab/embedding size mismatch: the model has {cfg['vocab_size']} embedding "
                        f"rows, models/tokenizer's base tokenizer {tokenizer.base_vocab_size} tokens; rerun "
                        f"`dvc repro tokenizer` for this base")
    model = build_model(cfg, weights, where)
    ids = [a["id"] for a in tokenizer.added]
    if ids != list(range(tokenizer.base_vocab_size, tokenizer.vocab_size)):
        raise UserError("models/tokenizer: added token ids do not follow the base vocabulary; rerun "
                        "`dvc repro tokenizer`")
    model = grow_vocab(model, [a["base_ids"] for a in tokenizer.added])
    return model, {"init": init, "base_params": sum(v.numel() for v in weights.values()),
                   "base_vocab_size": tokenizer.base_vocab_size, "added_tokens": len(ids), **facts}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--hf-dir", required=True, help="Hugging Face model directory (config.json, model.safetensors, "
                                                    "tokenizer.model)")
    ap.add_argument("--out", required=True, help="our model directory to write (replaced if present)")
    ap.add_argument("--tokenizer-out", help="also write the tokenizer directory (tokenizer.model) here")
    args = ap.parse_args(argv)
    cfg = import_model(args.hf_dir, args.out, args.tokenizer_out)
    print(f"wrote {args.out}: {cfg['n_layer']} layers, d_model {cfg['d_model']}, vocab {cfg['vocab_size']}")


if __name__ == "__main__":
    run_stage(main)
