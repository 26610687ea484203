"""The one checkpoint format: ``model.safetensors`` + ``config.json`` per model directory, and
the resumable training state (``state.pt``, loaded with ``weights_only=True``).

A model directory is self-describing: config.json holds the model config, the tokenizer's hash
and a few facts about how it was trained, so eval can check it was given a matching tokenizer.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from lib.core.errors import UserError
from lib.core.io import atomic_path, read_json, write_json
from lib.model.config import ModelConfig
from lib.model.gpt import GPT

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


def _weights(model: GPT) -> dict[str, torch.Tensor]:
    state = {k: v.detach().to("cpu").contiguous() for k, v in model.state_dict().items()}
    if model.cfg.tie_embeddings:
        state.pop("lm_head.weight", None)  # stored once, as embed.weight
    return state


def save_model(out_dir: str | os.PathLike, model: GPT, tokenizer_sha256: str, info: dict | None = None) -> None:
    """Write weights and config into ``out_dir`` atomically (the directory appears whole)."""
    model = getattr(model, "_orig_mod", model)  # unwrap torch.compile
    weights = _weights(model)
    for name, tensor in weights.items():
        if not torch.isfinite(tensor).all():
            raise RuntimeError(f"refusing to save a checkpoint with non-finite values in {name}")
    with atomic_path(out_dir) as tmp:
        tmp.mkdir(parents=True)
        save_file(weights, str(tmp / WEIGHTS_FILE))
        write_json(tmp / CONFIG_FILE, {"model": model.cfg.to_dict(), "tokenizer_sha256": tokenizer_sha256,
                                       "format": "hpc-lm/1", **(info or {})})


def save_best_and_final(out_dir: str | os.PathLike, config: ModelConfig, best: dict[str, torch.Tensor],
                        final: dict[str, torch.Tensor], tokenizer_sha256: str, info: dict) -> None:
    """``out_dir`` = the best-by-val model (what downstream stages load) with the last step's model
    in ``out_dir/final``, written as one atomic directory."""
    model = GPT(config)
    with atomic_path(out_dir) as tmp:
        model.load_state_dict(best)
        save_model(tmp, model, tokenizer_sha256, {**info, "weights": "best"})
        model.load_state_dict(final)
        save_model(tmp / "final", model, tokenizer_sha256, {**info, "weights": "final"})


def load_model(model_dir: str | os.PathLike, device: str | torch.device = "cpu",
               tokenizer_sha256: str | None = None) -> GPT:
    model_dir = Path(model_dir)
    meta = read_json(model_dir / CONFIG_FILE)
    if tokenizer_sha256 is not None and meta.get("tokenizer_sha256") != tokenizer_sha256:
        raise UserError(f"{model_dir}: was trained with a different tokenizer than the one given; "
                        f"rerun the training stages (`dvc repro`)")
    weights_path = model_dir / WEIGHTS_FILE
    if not weights_path.exists():
        raise UserError(f"{weights_path}: weights not found")
    model = GPT(ModelConfig(**meta["model"]))
    missing, unexpected = model.load_state_dict(load_file(str(weights_path)), strict=False)
    allowed_missing = {"lm_head.weight"} if model.cfg.tie_embeddings else set()
    if set(missing) - allowed_missing or unexpected:
        raise UserError(f"{weights_path}: does not match its config (missing {sorted(missing)}, "
                        f"unexpected {sorted(unexpected)})")
    return model.to(device)


def save_state(path: str | os.PathLike, state: dict) -> None:
    """Atomically save the full training state (tensors and plain Python values only)."""
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_state(path: str | os.PathLike) -> dict | None:
    path = Path(path)
    if not path.exists():
        return None
    return torch.load(path, map_location="cpu", weights_only=True)
