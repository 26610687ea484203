"""A base model named by ``pretrain.init``: where it lies (an HF directory or a GGUF file under
models/base/) and its tokenizer, read through transformers. No model code here: the tokenizer
stage reads a base's tokenizer through this module, and must not rerun when lib/model/ changes.
The base's weights are ``lib.hf.import_``'s."""
from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from lib.core.errors import UserError
from lib.tokenizer import MODEL_FILE

SCRATCH = "scratch"
BASE_DIR = Path("models/base")  # the declared DVC dependency of the tokenizer and pretrain stages


@dataclass
class BaseSource:
    path: Path
    gguf: str | None  # the .gguf file name inside ``path`` (then a directory); None: an HF directory


def resolve_init(init: str, base_dir: Path | None = BASE_DIR) -> BaseSource | None:
    """``pretrain.init`` as a base to read, or None for ``scratch``. The base must lie under
    ``base_dir``: that directory is what dvc.yaml declares, so replacing the base reruns."""
    if init == SCRATCH:
        return None
    path = Path(init)
    where = f"params.yaml: pretrain.init={init!r}"
    if not path.exists():
        raise UserError(f"{where}: no such file or directory; give 'scratch', a Hugging Face model directory "
                        f"or a .gguf file under {base_dir or '.'}/ (README: adapt a pretrained model)")
    if base_dir is not None and Path(base_dir).resolve() not in [path.resolve(), *path.resolve().parents]:
        raise UserError(f"{where}: put the base model under {base_dir}/ (the directory dvc.yaml declares as "
                        f"the base dependency, so a change reruns the stages)")
    if path.is_file():
        if path.suffix != ".gguf":
            raise UserError(f"{where}: a file must be a .gguf model; otherwise give a Hugging Face directory")
        return BaseSource(path.parent, path.name)
    ggufs = sorted(p.name for p in path.glob("*.gguf"))
    if not (path / "config.json").exists():
        if len(ggufs) == 1:
            return BaseSource(path, ggufs[0])
        raise UserError(f"{where}: no config.json (a Hugging Face model directory) and "
                        f"{len(ggufs)} .gguf files; point init at the model itself")
    return BaseSource(path, None)


def transformers_for(what: str, source: BaseSource):
    """The transformers module, offline; a missing package (or gguf for a GGUF base) stops with how to add it."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a base is read from disk, never fetched
    if source.gguf and importlib.util.find_spec("gguf") is None:
        raise UserError(f"{source.path / source.gguf}: reading a GGUF file needs the `gguf` package: "
                        f"`uv add gguf` (or `pip install gguf`)")
    try:
        import transformers
    except ImportError:
        raise UserError(f"{what} needs the `transformers` package: `uv add transformers` "
                        f"(or `pip install transformers`)") from None
    return transformers


def load_base_tokenizer(source: BaseSource) -> tuple[str, dict]:
    """(tokenizers JSON, special ids bos/eos/pad/unk) of a base model. transformers reads
    tokenizer.json, converts a SentencePiece tokenizer.model, or rebuilds one from GGUF metadata."""
    where = source.path / (source.gguf or "")
    if not source.gguf and not any((source.path / f).exists() for f in ("tokenizer.json", MODEL_FILE)):
        raise UserError(f"{source.path}: tokenizer missing: the base directory has neither tokenizer.json nor "
                        f"{MODEL_FILE}; copy the model's tokenizer files next to its weights")
    transformers = transformers_for("reading a base model's tokenizer", source)
    tok = transformers.AutoTokenizer.from_pretrained(str(source.path), gguf_file=source.gguf)
    if not getattr(tok, "is_fast", False):
        raise UserError(f"{where}: transformers gave no `tokenizers` tokenizer ({type(tok).__name__})")
    eos = tok.eos_token_id
    if eos is None:
        raise UserError(f"{where}: the base tokenizer names no end-of-text (eos) token")
    pick = lambda v: eos if v is None else int(v)  # noqa: E731 -- no BOS/pad: EOS serves (GPT-2 style)
    special = {"bos": pick(tok.bos_token_id), "eos": int(eos), "pad": pick(tok.pad_token_id),
               "unk": -1 if tok.unk_token_id is None else int(tok.unk_token_id)}
    return tok.backend_tokenizer.to_str(), special
