"""What ``hpc-lm serve`` can serve: a model directory of ours (pretrain or SFT) with its
tokenizer, or a Hugging Face export directory (lib/hf/export.py's layout, read back through
lib/hf/import_.py)."""
from __future__ import annotations

import tempfile
from pathlib import Path

from lib.core.errors import UserError
from lib.core.io import read_json
from lib.hf.import_ import import_model
from lib.model.checkpoint import load_model
from lib.model.gpt import GPT
from lib.tokenizer import MODEL_FILE, Tokenizer


def load_served(model_dir: str | Path, tokenizer_dir: str | Path, device: str = "cpu") -> tuple[GPT, Tokenizer]:
    model_dir = Path(model_dir)
    config = model_dir / "config.json"
    if not config.exists():
        raise UserError(f"{model_dir}: no config.json; pass --model a model directory (models/sft, models/pretrain) "
                        f"or a Hugging Face export directory")
    meta = read_json(config)
    if isinstance(meta.get("model"), dict):  # ours
        mode = (meta.get("attention") or {}).get("mode", "learned")
        if mode != "learned":  # its attention comes from a provider per whole sequence: no batch joins
            raise UserError(f"{config}: this model was trained with attention.mode {mode!r}; the server runs "
                            f"learned attention only (use `hpc-lm chat` or `hpc-lm generate` for it)")
        tokenizer = Tokenizer.load(tokenizer_dir)
        return load_model(model_dir, device, tokenizer.sha256).eval(), tokenizer
    if "architectures" in meta:  # an HF export: import it (weights renamed back) into a scratch directory
        if not (model_dir / MODEL_FILE).exists():
            raise UserError(f"{model_dir / MODEL_FILE}: not found; serving an HF directory needs the "
                            f"SentencePiece model that `hpc-lm export` writes beside the weights")
        with tempfile.TemporaryDirectory(prefix="hpc-lm-serve-") as tmp:
            import_model(model_dir, Path(tmp) / "model", Path(tmp) / "tokenizer")
            tokenizer = Tokenizer.load(Path(tmp) / "tokenizer")
            return load_model(Path(tmp) / "model", device, tokenizer.sha256).eval(), tokenizer
    raise UserError(f"{config}: neither a model of ours (no 'model' section) nor a Hugging Face config "
                    f"(no 'architectures')")
