"""Our model config and weights <-> a transformers ``LlamaForCausalLM`` config and weights.

The default model is a Llama: pre-norm RMSNorm (eps 1e-6, computed in float32), RoPE in the
half-split ("rotate_half") convention with inv_freq = 1/theta^(2i/d) -- the one transformers'
Llama uses, so q/k weights need no permutation --, SwiGLU MLP (down(silu(gate(x)) * up(x))),
no biases, grouped-query attention (a k/v head serves n_head / n_kv_head consecutive q heads,
as ``repeat_kv`` does), optionally tied input and output embeddings. The mapping is a pure rename.

``qk_norm`` (an RMSNorm with a gain on each head's queries and keys, before RoPE, eps 1e-6) is
exactly transformers' Qwen3 layout: such a model exports as ``Qwen3ForCausalLM`` with
``self_attn.q_norm`` / ``k_norm``, everything else as for Llama. ``zero_init_proj`` is an init,
not an architecture. Variants neither can represent (learned, sinusoidal or no positions,
LayerNorm, the GELU or ReLU² MLPs, logit soft-capping) are refused, naming the param; so is any
config key this module does not know, because silently dropping an architecture switch would
export a different model.
"""
from __future__ import annotations

import dataclasses

from lib.core.errors import UserError
from lib.tokenizer import BOS, EOS, PAD

RMS_EPS = 1e-6  # lib.model.layers.RMSNorm's default
FORMAT = "hpc-lm/1"
PROVENANCE_KEY = "hpc_lm"  # our original config, kept inside the HF config.json for a lossless import

# key -> the only value transformers' Llama can represent (the default of each variant switch)
LLAMA_VARIANT = {"positions": "rope", "norm": "rmsnorm", "mlp": "swiglu"}
# keys that change the architecture and are mapped below
ARCH_KEYS = {"n_layer", "n_head", "n_kv_head", "d_model", "d_ff", "max_seq_len", "rope_theta",
             "tie_embeddings", "vocab_size", "qk_norm"}
# keys that only matter for training (transformers' Llama is exported for inference)
TRAINING_KEYS = {"dropout", "attn_dropout", "init_std", "zero_init_proj"}
# keys folded into the exported weights (``folded``): muP's logit multiplier goes into the output matrix
FOLDED_KEYS = {"base_width"}
# key -> (the value that means "off", why no transformers layout we export holds it otherwise)
REFUSED = {"logit_softcap": (0.0, "Gemma 2 soft-caps logits but differs from our model elsewhere (scaled "
                                  "embeddings, (1 + w) norm gains, GeGLU, extra norms); Llama and Qwen3 "
                                  "have no soft-capping")}
VARIANT_HINTS = {
    "positions": "transformers' Llama only has RoPE; no standard decoder there uses our {value} positions",
    "norm": "transformers' Llama only has RMSNorm",
    "mlp": "transformers' Llama and Qwen3 only have the gated SwiGLU MLP; our {value} MLP is not gated",
}


def check_exportable(model_cfg: dict, where: str = "model config") -> None:
    """Raise a UserError naming the first param whose value the Llama architecture cannot hold."""
    for key, supported in LLAMA_VARIANT.items():
        value = model_cfg.get(key, supported)
        if value != supported:
            raise UserError(f"{where}: {key}={value!r} cannot be exported to the Hugging Face format "
                            f"({VARIANT_HINTS[key].format(value=value)}); train with {key}: {supported} to export")
    for key, (off, why) in REFUSED.items():
        value = model_cfg.get(key, off)
        if value != off:
            raise UserError(f"{where}: {key}={value!r} cannot be exported to the Hugging Face format ({why}); "
                            f"train with {key}: {off} to export")
    # A param this module does not know may change the architecture; at its default it is the
    # original model (lib.model.gpt's convention for new fields), anything else is refused.
    defaults = _model_defaults()
    unknown = sorted(k for k in set(model_cfg) - ARCH_KEYS - TRAINING_KEYS - FOLDED_KEYS - set(LLAMA_VARIANT)
                     - set(REFUSED)
                     if k not in defaults or model_cfg[k] != defaults[k])
    if unknown:
        raise UserError(f"{where}: the exporter does not know the model param(s) "
                        f"{', '.join(f'{k}={model_cfg[k]!r}' for k in unknown)}; teach lib/hf/convert.py how "
                        f"they map to transformers before exporting")
    if model_cfg.get("vocab_size", 0) <= 0:
        raise UserError(f"{where}: vocab_size is not set; is this a trained model directory?")


def output_multiplier(model_cfg: dict) -> float:
    """muP's logit multiplier, 1 / ModelConfig.width_mult (1 at the tuning width or without scaling)."""
    base = model_cfg.get("base_width") or 0
    return base / model_cfg["d_model"] if base else 1.0


def folded(model_cfg: dict) -> dict:
    """The config of the exported model: with a logit multiplier other than 1 (a model wider or
    narrower than its base_width), the multiplier is folded into an untied output matrix
    (transformers' Llama has no logit scale), so the export has tie_embeddings false and
    base_width 0 -- the same logits, and a lossless import of exactly that."""
    if output_multiplier(model_cfg) == 1.0:
        return model_cfg
    return {**model_cfg, "tie_embeddings": False, "base_width": 0}


def _model_defaults() -> dict:
    from lib.model.config import ModelConfig
    return {f.name: f.default for f in dataclasses.fields(ModelConfig) if f.default is not dataclasses.MISSING}


def hf_config(model_cfg: dict, tokenizer_sha256: str | None = None, dtype: str = "float32",
              ids: tuple[int, int, int] = (BOS, EOS, PAD)) -> dict:
    """The transformers ``config.json`` of a ``LlamaForCausalLM`` (a ``Qwen3ForCausalLM`` with
    qk_norm) equal to our model; ``ids`` are the tokenizer's (bos, eos, pad) -- fixed for ours,
    the base's for an adapted model."""
    check_exportable(model_cfg)
    c = model_cfg = folded(model_cfg)
    n_head = c["n_head"]
    theta = float(c.get("rope_theta", 10000.0))
    qwen3 = {"use_sliding_window": False, "sliding_window": None, "max_window_layers": c["n_layer"],
             "layer_types": ["full_attention"] * c["n_layer"]} if c.get("qk_norm") else {}
    return {
        "architectures": [architecture(c)],
        "model_type": "qwen3" if qwen3 else "llama",
        **qwen3,
        "vocab_size": c["vocab_size"],
        "hidden_size": c["d_model"],
        "intermediate_size": c["d_ff"],
        "num_hidden_layers": c["n_layer"],
        "num_attention_heads": n_head,
        "num_key_value_heads": c.get("n_kv_head", n_head),
        "head_dim": c["d_model"] // n_head,
        "hidden_act": "silu",
        "max_position_embeddings": c["max_seq_len"],
        "rms_norm_eps": c.get("norm_eps") or RMS_EPS,
        # transformers >= 5 reads rope_parameters; 4.x and llama.cpp's converter read rope_theta
        "rope_parameters": {"rope_type": "default", "rope_theta": theta},
        "rope_theta": theta,
        "tie_word_embeddings": bool(c.get("tie_embeddings", True)),
        "attention_bias": False,
        "mlp_bias": False,
        "attention_dropout": 0.0,
        "initializer_range": float(c.get("init_std", 0.02)),
        "pretraining_tp": 1,
        "use_cache": True,
        "bos_token_id": ids[0],
        "eos_token_id": ids[1],
        "pad_token_id": ids[2],
        "dtype": dtype,
        PROVENANCE_KEY: {"format": FORMAT, "model": dict(model_cfg), "tokenizer_sha256": tokenizer_sha256},
    }


def generation_config(end_id: int, ids: tuple[int, int, int] = (BOS, EOS, PAD)) -> dict:
    """Greedy by default; stop at EOS or at the end of an assistant turn (<|end|>)."""
    return {"bos_token_id": ids[0], "eos_token_id": [ids[1], end_id], "pad_token_id": ids[2], "do_sample": False}


def architecture(model_cfg: dict) -> str:
    return "Qwen3ForCausalLM" if model_cfg.get("qk_norm") else "LlamaForCausalLM"


def weight_names(n_layer: int, tie_embeddings: bool, qk_norm: bool = False) -> list[tuple[str, str]]:
    """(our name, transformers' name) for every stored tensor."""
    pairs = [("embed.weight", "model.embed_tokens.weight")]
    for i in range(n_layer):
        ours, hf = f"blocks.{i}.", f"model.layers.{i}."
        pairs += [
            (ours + "attn_norm.weight", hf + "input_layernorm.weight"),
            (ours + "attn.wq.weight", hf + "self_attn.q_proj.weight"),
            (ours + "attn.wk.weight", hf + "self_attn.k_proj.weight"),
            (ours + "attn.wv.weight", hf + "self_attn.v_proj.weight"),
            (ours + "attn.wo.weight", hf + "self_attn.o_proj.weight"),
            (ours + "mlp_norm.weight", hf + "post_attention_layernorm.weight"),
            (ours + "mlp.w_gate.weight", hf + "mlp.gate_proj.weight"),
            (ours + "mlp.w_up.weight", hf + "mlp.up_proj.weight"),
            (ours + "mlp.w_down.weight", hf + "mlp.down_proj.weight"),
        ]
        if qk_norm:
            pairs += [(ours + "attn.q_norm.weight", hf + "self_attn.q_norm.weight"),
                      (ours + "attn.k_norm.weight", hf + "self_attn.k_norm.weight")]
    pairs.append(("norm.weight", "model.norm.weight"))
    if not tie_embeddings:
        pairs.append(("lm_head.weight", "lm_head.weight"))
    return pairs


def rename(state: dict, pairs: list[tuple[str, str]], where: str, optional: set[str] = frozenset()) -> dict:
    """``state`` renamed by ``pairs`` (source name -> target name); a missing or extra tensor stops."""
    mapping = dict(pairs)
    missing = sorted(set(mapping) - set(state))
    unexpected = sorted(set(state) - set(mapping) - set(optional))
    if missing or unexpected:
        raise UserError(f"{where}: tensors do not match the config (missing {missing[:5]}, "
                        f"unexpected {unexpected[:5]})")
    return {mapping[k]: v for k, v in state.items() if k in mapping}


def to_hf_weights(state: dict, model_cfg: dict, where: str) -> dict:
    scale = output_multiplier(model_cfg)
    if scale != 1.0:  # fold muP's logit multiplier into the output matrix (see ``folded``)
        tied = bool(model_cfg.get("tie_embeddings", True))
        head = state["embed.weight"] if tied else state["lm_head.weight"]
        state = {**state, "lm_head.weight": head * scale}
        model_cfg = folded(model_cfg)
    tie = bool(model_cfg.get("tie_embeddings", True))
    # a tied checkpoint may carry lm_head.weight (an older save); it is embed.weight, drop it
    return rename(state, weight_names(model_cfg["n_layer"], tie, bool(model_cfg.get("qk_norm"))), where,
                  optional={"lm_head.weight"} if tie else set())


def from_hf_weights(state: dict, model_cfg: dict, where: str) -> dict:
    tie = bool(model_cfg.get("tie_embeddings", True))
    pairs = [(hf, ours) for ours, hf in weight_names(model_cfg["n_layer"], tie)]
    return rename(state, pairs, where, optional={"lm_head.weight"} if tie else set())


def check_layout(hf: dict, where: str) -> None:
    """Refuse, naming what was found, a model that is not a causal LM or not in the Llama layout."""
    model_type, archs = hf.get("model_type"), list(hf.get("architectures") or [])
    if model_type == "llama" and (not archs or "LlamaForCausalLM" in archs):
        return
    kind = "not a causal LM" if archs and not any(a.endswith("ForCausalLM") for a in archs) else \
        "not a layout we map"
    raise UserError(f"{where}: {kind}: found model_type={model_type!r}, architectures={archs}; only "
                    f"Llama-layout causal LMs (LlamaForCausalLM: Llama, SmolLM2, TinyLlama, ...) can be imported")


def model_config_from_hf(hf: dict, fields: list[str], where: str) -> dict:
    """Our model config from a transformers Llama config.json; ``fields`` are the keys our
    ModelConfig accepts. Whatever Llama feature we do not implement is refused by name."""
    check_layout(hf, where)

    def need(key, ok, expected):
        if not ok(hf.get(key)):
            raise UserError(f"{where}: {key}={hf.get(key)!r} is not supported by our model (expected {expected})")

    need("hidden_act", lambda v: v in ("silu", "swish", None), "'silu'")
    need("attention_bias", lambda v: not v, "false")
    need("mlp_bias", lambda v: not v, "false")
    need("pretraining_tp", lambda v: v in (None, 1), 1)
    need("rope_scaling", lambda v: not v or v.get("rope_type", v.get("type")) == "default", "null")
    rope = hf.get("rope_parameters") or {}
    need("rope_parameters", lambda v: not v or v.get("rope_type", "default") == "default",
         "rope_type 'default'")
    d_model, n_head = int(hf["hidden_size"]), int(hf["num_attention_heads"])
    need("head_dim", lambda v: v in (None, d_model // n_head), f"hidden_size / num_attention_heads = {d_model // n_head}")
    theta = float(rope.get("rope_theta", hf.get("rope_theta", 10000.0)))
    cfg = {
        "n_layer": int(hf["num_hidden_layers"]),
        "n_head": n_head,
        "n_kv_head": int(hf.get("num_key_value_heads") or n_head),
        "d_model": d_model,
        "d_ff": int(hf["intermediate_size"]),
        "max_seq_len": int(hf.get("max_position_embeddings", 2048)),
        "rope_theta": theta,
        "tie_embeddings": bool(hf.get("tie_word_embeddings", False)),
        "vocab_size": int(hf["vocab_size"]),
        "dropout": 0.0,
        "init_std": float(hf.get("initializer_range", 0.02)),
        # ours unless the checkpoint says otherwise (SmolLM2: 1e-5): kept exactly, so logits match
        "norm_eps": None if abs(float(hf.get("rms_norm_eps") or RMS_EPS) - RMS_EPS) < 1e-12 else float(hf["rms_norm_eps"]),
        **LLAMA_VARIANT,
    }
    original = (hf.get(PROVENANCE_KEY) or {}).get("model") or {}
    for key in TRAINING_KEYS:  # not part of the architecture: take ours back if we exported it
        if key in original:
            cfg[key] = original[key]
    return {k: v for k, v in cfg.items() if k in fields}

