r"""Check an exported directory against our model through transformers (a dev dependency):
logits on the same ids, greedy generation, and tokenizer ids on texts.

    uv run hpc-lm verify --model models/pretrain --tokenizer models/tokenizer \
        --hf-dir models/hf/pretrain [--texts data/corpus/val.jsonl]

prints the maximum absolute logit difference, whether greedy generation of 32 tokens agrees and
how many texts the transformers tokenizer encodes differently from ours.
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Sequence

import torch

from lib.core.errors import UserError
from lib.core.stage import run_stage
from lib.infer.generate import generate
from lib.tokenizer import Tokenizer

OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def load_hf(hf_dir: str | os.PathLike):
    """(model, tokenizer) from an exported directory, float32 on CPU, hub access off."""
    os.environ.update(OFFLINE_ENV)
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError:
        raise UserError("transformers is not installed; it is a dev dependency (`uv sync --dev`)") from None
    model = AutoModelForCausalLM.from_pretrained(str(hf_dir), dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(str(hf_dir))


@torch.no_grad()
def max_logit_diff(ours: torch.nn.Module, hf_model, ids: Sequence[Sequence[int]]) -> float:
    """Largest |ours - transformers| over every logit of every sequence (each run on its own)."""
    ours.eval()
    worst = 0.0
    for seq in ids:
        x = torch.tensor([list(seq)])
        a, _ = ours(x)
        b = hf_model(x).logits
        worst = max(worst, float((a.float() - b.float()).abs().max()))
    return worst


@torch.no_grad()
def greedy_both(ours: torch.nn.Module, hf_model, prompt: Sequence[int], n: int = 32) -> tuple[list[int], list[int]]:
    """``n`` greedy tokens after ``prompt`` from both models, no stop token."""
    a = generate(ours, list(prompt), n, set())
    out = hf_model.generate(torch.tensor([list(prompt)]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                            max_new_tokens=n, min_new_tokens=0, do_sample=False, eos_token_id=None,
                            pad_token_id=0, stop_strings=None)
    b = out[0, len(prompt):].tolist()
    return a, b


def tokenizer_mismatches(ours: Tokenizer, hf_tokenizer, texts: Sequence[str]) -> list[int]:
    """Indices of texts whose ids differ (no BOS on either side)."""
    return [i for i, t in enumerate(texts) if ours.encode(t) != hf_tokenizer.encode(t, add_special_tokens=False)]


def read_texts(path: str | os.PathLike) -> list[str]:
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: not found")
    if path.suffix == ".jsonl":
        return [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [t for t in path.read_text(encoding="utf-8").split("\n\n") if t.strip()]


def verify(model_dir: str, tokenizer_dir: str, hf_dir: str, texts: list[str], window: int | None = None) -> dict:
    from lib.model.checkpoint import load_model
    tokenizer = Tokenizer.load(tokenizer_dir)
    ours = load_model(model_dir, "cpu", tokenizer.sha256).eval()
    hf_model, hf_tok = load_hf(hf_dir)
    n = window or ours.cfg.max_seq_len
    seqs = [([tokenizer.bos_id] + tokenizer.encode(t))[:n] for t in texts]
    prompt = seqs[0][:max(1, min(len(seqs[0]), ours.cfg.max_seq_len - 32))]
    a, b = greedy_both(ours, hf_model, prompt, 32)
    return {"max_abs_logit_diff": max_logit_diff(ours, hf_model, seqs), "sequences": len(seqs),
            "greedy_32_equal": a == b, "tokenizer_mismatches": len(tokenizer_mismatches(tokenizer, hf_tok, texts)),
            "texts": len(texts)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--tokenizer", default="models/tokenizer")
    ap.add_argument("--hf-dir", required=True)
    ap.add_argument("--texts", default="data/corpus/val.jsonl", help="jsonl with a 'text' field, or plain text")
    args = ap.parse_args(argv)
    print(json.dumps(verify(args.model, args.tokenizer, args.hf_dir, read_texts(args.texts)), indent=2))


if __name__ == "__main__":
    run_stage(main)
