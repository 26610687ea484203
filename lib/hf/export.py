"""Export a model directory (ours: model.safetensors + config.json) and its tokenizer as a
Hugging Face model directory that ``transformers.AutoModelForCausalLM`` / ``AutoTokenizer`` load
offline, lm-evaluation-harness evaluates (``--model hf``) and llama.cpp's convert_hf_to_gguf.py
converts:

    config.json              LlamaForCausalLM config, Qwen3ForCausalLM with qk_norm (+ our original
                             config under "hpc_lm")
    generation_config.json   greedy; stops at </s> or <|end|>
    model.safetensors        the weights, renamed (lib/hf/convert.py)
    tokenizer.json           the SentencePiece model as a tokenizers JSON (lib/hf/tokenizer.py)
    tokenizer_config.json    special tokens, BOS on, the chat template
    special_tokens_map.json
    tokenizer.model          the SentencePiece model itself (llama.cpp and our import read it)

    uv run hpc-lm export --model models/sft --tokenizer models/tokenizer --out models/hf/sft

``--format gguf`` writes one GGUF file instead (lib/hf/gguf_export.py).

No transformers import: the files are plain JSON and safetensors. The directory appears whole
(written under a temporary name, then renamed).
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from lib.core.errors import UserError
from lib.core.stage import run_stage
from lib.hf import convert
from lib.hf import tokenizer as hf_tok
from lib.core.io import atomic_path, read_json, write_json
from lib.tokenizer import MODEL_FILE, Tokenizer

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def export_model(model_dir: str | os.PathLike, tokenizer_dir: str | os.PathLike, out_dir: str | os.PathLike,
                 dtype: str = "float32") -> dict:
    """Write the Hugging Face directory ``out_dir``; returns a small summary for metrics."""
    model_dir, out_dir = Path(model_dir), Path(out_dir)
    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype!r}: expected one of {', '.join(DTYPES)}")
    tokenizer = Tokenizer.load(tokenizer_dir)  # ours (tokenizer.model) or a base's (tokenizer.json)
    model_bytes = tokenizer.model_bytes
    ids = (tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id)
    meta = read_json(model_dir / CONFIG_FILE)
    if not isinstance(meta.get("model"), dict):
        raise UserError(f"{model_dir / CONFIG_FILE}: no 'model' section; is this a model directory of ours?")
    cfg = meta["model"]
    convert.check_exportable(cfg, f"{model_dir / CONFIG_FILE}: model")
    if meta.get("tokenizer_sha256") not in (None, tokenizer.sha256):
        raise UserError(f"{model_dir}: was trained with a different tokenizer than {tokenizer_dir}; "
                        f"pass the tokenizer it was trained with")
    if cfg["vocab_size"] != tokenizer.vocab_size:
        raise UserError(f"{model_dir}: vocab_size {cfg['vocab_size']} != tokenizer's {tokenizer.vocab_size}")
    weights_path = model_dir / WEIGHTS_FILE
    if not weights_path.exists():
        raise UserError(f"{weights_path}: weights not found")
    weights = convert.to_hf_weights(load_file(str(weights_path)), cfg, str(weights_path))
    weights = {k: v.to(DTYPES[dtype]).contiguous() for k, v in sorted(weights.items())}
    stale = hf_tok.stuck_pieces(model_bytes)
    if stale:  # never seen with our tokenizers; see lib/hf/tokenizer.py on ignore_merges
        print(f"warning: {len(stale)} vocabulary pieces do not re-encode to themselves "
              f"(e.g. {stale[:3]}); the exported tokenizer may split those words differently")

    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        save_file(weights, str(tmp / WEIGHTS_FILE), metadata={"format": "pt"})
        write_json(tmp / CONFIG_FILE, convert.hf_config(cfg, tokenizer.sha256, dtype, ids))
        write_json(tmp / "generation_config.json", convert.generation_config(tokenizer.marker("end"), ids))
        write_json(tmp / "tokenizer.json", hf_tok.tokenizer_json(model_bytes))
        write_json(tmp / "tokenizer_config.json", hf_tok.tokenizer_config(model_bytes, cfg["max_seq_len"]))
        write_json(tmp / "special_tokens_map.json", hf_tok.special_tokens_map(model_bytes))
        if tokenizer.kind == "sentencepiece":
            (tmp / MODEL_FILE).write_bytes(model_bytes)
    return {"architecture": convert.architecture(cfg), "parameters": sum(v.numel() for v in weights.values()),
            "tensors": len(weights), "dtype": dtype, "bytes": (out_dir / WEIGHTS_FILE).stat().st_size}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="our model directory (models/pretrain or models/sft)")
    ap.add_argument("--tokenizer", default="models/tokenizer", help="tokenizer directory (default %(default)s)")
    ap.add_argument("--out", required=True, help="Hugging Face directory (or, with --format gguf, the .gguf "
                    "file) to write; replaced if present")
    ap.add_argument("--dtype", default="float32", choices=sorted(DTYPES), help="weights dtype (default %(default)s)")
    ap.add_argument("--format", default="hf", choices=("hf", "gguf"),
                    help="hf: a Hugging Face directory (default); gguf: one GGUF file for llama.cpp/Ollama")
    ap.add_argument("--gguf-type", default="f16", choices=("f32", "f16", "q8_0"),
                    help="GGUF matrices: f32, f16 (default) or q8_0 (8-bit blocks)")
    args = ap.parse_args(argv)
    if args.format == "gguf":
        from lib.hf.gguf_export import export_gguf
        summary = export_gguf(args.model, args.tokenizer, args.out, args.gguf_type)
        print(f"wrote {args.out}: {summary['architecture']} GGUF, {summary['type']}, {summary['bytes']:,} bytes")
        return
    summary = export_model(args.model, args.tokenizer, args.out, args.dtype)
    print(f"wrote {args.out}: {summary['architecture']}, {summary['parameters']:,} parameters ({args.dtype})")


if __name__ == "__main__":
    run_stage(main)
