"""Export a model directory of ours as one GGUF file (llama.cpp, Ollama, LM Studio, and
transformers' GGUF loader read it): weights, the SentencePiece vocabulary, and the chat template.

    uv run hpc-lm export --format gguf --model models/sft --out models/sft.gguf [--gguf-type q8_0]

The architectures are the HF export's (lib/hf/convert.py, whose refusals apply unchanged):
``llama``, or ``qwen3`` for a model with qk_norm. Tensor names go ours -> transformers'
(convert.weight_names) -> GGUF's (the gguf package's own name map), so no third table exists.
Two facts of the format: llama.cpp's ``llama`` applies RoPE to interleaved pairs while ours (and
transformers') rotates halves, so q and k rows are permuted into its order -- readers permute
them back --; its ``qwen3`` rotates halves and takes them as they are. Norm gains stay float32
(as llama.cpp's converter keeps 1-D tensors); matrices are f32, f16 or Q8_0 (blocks of 32 with
one f16 scale; a matrix whose rows are not a multiple of 32 stays f16).

The ``gguf`` package is the project's dev dependency, imported only here: without it the
command says how to add it.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
from safetensors.torch import load_file

from lib.core.errors import UserError
from lib.core.io import atomic_path, read_json
from lib.hf import convert
from lib.hf import tokenizer as hf_tok
from lib.tokenizer import Tokenizer

TYPES = ("f32", "f16", "q8_0")


def export_gguf(model_dir: str | os.PathLike, tokenizer_dir: str | os.PathLike, out: str | os.PathLike,
                kind: str = "f16") -> dict:
    """Write ``out`` (one .gguf file, atomically); returns a summary."""
    if importlib.util.find_spec("gguf") is None:
        raise UserError("--format gguf needs the `gguf` package: `uv sync --group dev` (or `pip install gguf`)")
    import gguf

    if kind not in TYPES:
        raise UserError(f"--gguf-type {kind!r}: expected one of {', '.join(TYPES)}")
    model_dir, out = Path(model_dir), Path(out)
    meta = read_json(model_dir / "config.json")
    if not isinstance(meta.get("model"), dict):
        raise UserError(f"{model_dir / 'config.json'}: no 'model' section; is this a model directory of ours?")
    cfg = meta["model"]
    convert.check_exportable(cfg, f"{model_dir / 'config.json'}: model")
    tokenizer = Tokenizer.load(tokenizer_dir)
    if tokenizer.kind != "sentencepiece":
        raise UserError(f"{tokenizer_dir}: GGUF export writes a SentencePiece vocabulary; this tokenizer is "
                        f"{tokenizer.kind!r}")
    if meta.get("tokenizer_sha256") not in (None, tokenizer.sha256) or cfg["vocab_size"] != tokenizer.vocab_size:
        raise UserError(f"{model_dir}: was trained with a different tokenizer than {tokenizer_dir}")
    weights_path = model_dir / "model.safetensors"
    if not weights_path.exists():
        raise UserError(f"{weights_path}: weights not found")
    hf_weights = convert.to_hf_weights(load_file(str(weights_path)), cfg, str(weights_path))

    arch = gguf.MODEL_ARCH.QWEN3 if cfg.get("qk_norm") else gguf.MODEL_ARCH.LLAMA
    names = gguf.get_tensor_name_map(arch, cfg["n_layer"])
    with atomic_path(out) as tmp:
        w = gguf.GGUFWriter(str(tmp), gguf.MODEL_ARCH_NAMES[arch])
        _hyperparameters(w, gguf, cfg, model_dir.name, kind)
        _vocabulary(w, gguf, tokenizer, cfg["max_seq_len"])
        for hf_name, tensor in sorted(hf_weights.items()):
            name = names.get_name(hf_name, try_suffixes=(".weight",))
            if name is None:
                raise UserError(f"{weights_path}: the gguf package has no name for {hf_name}")
            data = _llama_rope_order(hf_name, tensor.float().numpy(), cfg) if arch == gguf.MODEL_ARCH.LLAMA \
                else tensor.float().numpy()
            _add_tensor(w, gguf, name, data, kind)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    return {"architecture": gguf.MODEL_ARCH_NAMES[arch], "type": kind, "tensors": len(hf_weights),
            "bytes": out.stat().st_size}


def _hyperparameters(w, gguf, cfg: dict, name: str, kind: str) -> None:
    head_dim = cfg["d_model"] // cfg["n_head"]
    w.add_name(name)
    w.add_context_length(cfg["max_seq_len"])
    w.add_embedding_length(cfg["d_model"])
    w.add_block_count(cfg["n_layer"])
    w.add_feed_forward_length(cfg["d_ff"])
    w.add_head_count(cfg["n_head"])
    w.add_head_count_kv(cfg.get("n_kv_head") or cfg["n_head"])
    w.add_rope_dimension_count(head_dim)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_rope_freq_base(float(cfg.get("rope_theta", 10000.0)))
    w.add_layer_norm_rms_eps(float(cfg.get("norm_eps") or convert.RMS_EPS))
    w.add_vocab_size(cfg["vocab_size"])
    w.add_file_type({"f32": gguf.LlamaFileType.ALL_F32, "f16": gguf.LlamaFileType.MOSTLY_F16,
                     "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}[kind])
    w.add_quantization_version(gguf.GGML_QUANT_VERSION)


def _vocabulary(w, gguf, tokenizer: Tokenizer, max_len: int) -> None:
    """The SentencePiece pieces, scores and types (SentencePiece's type numbers are GGUF's), the
    special ids, and the chat template the HF export writes."""
    proto = hf_tok.parse_model(tokenizer.model_bytes)
    w.add_tokenizer_model("llama")
    w.add_tokenizer_pre("default")
    w.add_token_list([p.piece.encode("utf-8") for p in proto.pieces])
    w.add_token_scores([float(p.score) for p in proto.pieces])
    w.add_token_types([int(p.type) for p in proto.pieces])
    w.add_bos_token_id(tokenizer.bos_id)
    w.add_eos_token_id(tokenizer.eos_id)
    w.add_unk_token_id(tokenizer.unk_id)
    w.add_pad_token_id(tokenizer.pad_id)
    w.add_eot_token_id(tokenizer.marker("end"))  # llama.cpp ends an assistant turn here
    w.add_add_bos_token(True)
    w.add_add_eos_token(False)
    w.add_chat_template(hf_tok.tokenizer_config(tokenizer.model_bytes, max_len)["chat_template"])


def _llama_rope_order(hf_name: str, data: np.ndarray, cfg: dict) -> np.ndarray:
    """q/k rows from rotate-half order (pairs i, i + d/2) to interleaved pairs (2i, 2i + 1)."""
    if hf_name.endswith("self_attn.q_proj.weight"):
        heads = cfg["n_head"]
    elif hf_name.endswith("self_attn.k_proj.weight"):
        heads = cfg.get("n_kv_head") or cfg["n_head"]
    else:
        return data
    rows, cols = data.shape
    return data.reshape(heads, 2, rows // heads // 2, cols).swapaxes(1, 2).reshape(rows, cols)


def _add_tensor(w, gguf, name: str, data: np.ndarray, kind: str) -> None:
    if data.ndim == 1 or kind == "f32":
        w.add_tensor(name, data.astype(np.float32))
    elif kind == "q8_0" and data.shape[-1] % gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType.Q8_0][0] == 0:
        q = gguf.quants.quantize(data.astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
        w.add_tensor(name, q, raw_shape=q.shape, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    else:
        w.add_tensor(name, data.astype(np.float16))
