"""A tiny tokenizer trained in-process and tiny random models, shared by the chat, SFT,
generation, LoRA and CLI tests. Cached per test session: training the tokenizer takes ~1 s."""
from __future__ import annotations

import functools
import random
from pathlib import Path

import torch

from lib.model.checkpoint import save_model
from lib.model.config import ModelConfig
from lib.model.gpt import GPT
from lib.tokenizer import MODEL_FILE, Tokenizer
from lib.tokenizer.build import TokenizerParams, train_tokenizer

WORDS = ("the MPI rank sends a message to every node while OpenMP threads share the loop "
         "iterations of a parallel region; a CUDA kernel launches blocks of threads on the GPU "
         "and the cache line bounces between cores when false sharing happens; Slurm schedules "
         "jobs on nodes with 64 cores and NUMA memory bandwidth limits the reduction").split()


def hpc_sentences(n: int = 200, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(6, 16))) + "." for _ in range(n)]


@functools.lru_cache(maxsize=1)
def tokenizer_bytes() -> bytes:
    params = TokenizerParams(vocab_size=400, num_threads=1)
    return train_tokenizer(hpc_sentences(), params, terms=["MPI_Allreduce"], seed=0)


def tiny_tokenizer() -> Tokenizer:
    return Tokenizer(tokenizer_bytes())


def tiny_model(vocab_size: int, seed: int = 0, max_seq_len: int = 64, n_kv_head: int = 2,
               spread: float = 1.0, **variant) -> GPT:
    """A random 2-layer model. ``spread`` scales the output head so that logits are far apart
    (random init gives nearly uniform logits, where argmax ties would make tests flaky)."""
    torch.manual_seed(seed)
    cfg = ModelConfig(n_layer=2, n_head=4, n_kv_head=n_kv_head, d_model=32, d_ff=64,
                      max_seq_len=max_seq_len, dropout=0.0, tie_embeddings=False, vocab_size=vocab_size, **variant)
    model = GPT(cfg)
    with torch.no_grad():
        model.lm_head.weight.mul_(spread)
    return model.eval()


def write_model_dirs(root: Path, model: GPT | None = None) -> tuple[Path, Path]:
    """A tokenizer directory and a model directory as the pipeline writes them."""
    tok = tiny_tokenizer()
    tok_dir = root / "tokenizer"
    tok_dir.mkdir(parents=True, exist_ok=True)
    (tok_dir / MODEL_FILE).write_bytes(tokenizer_bytes())
    model_dir = root / "model"
    save_model(model_dir, model or tiny_model(tok.vocab_size, spread=20.0), tok.sha256, {"stage": "test"})
    return model_dir, tok_dir


def train_config(steps: int, accum_steps: int = 1, **params):
    """(TrainParams, RunPlan) for the loop: ``steps`` and ``accum_steps`` go to the plan, the rest
    to the params (tests pass the same keys params.yaml would)."""
    from lib.train.params import RunPlan, TrainParams
    return TrainParams(**params), RunPlan(steps=steps, accum_steps=accum_steps)
