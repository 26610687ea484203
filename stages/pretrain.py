"""pretrain: train the decoder-only transformer on the packed shards; keep the best-by-val weights.

One process: `python -m stages.pretrain` (what `dvc repro` runs). Several GPUs or nodes: the same
module under `torchrun` (see README); `pretrain.parallel` picks DDP or FSDP. The frame (attention,
resumable state, outputs, figures, summary line) is lib/train/scaffold.py's.
"""
from pathlib import Path

import torch

from lib.core.io import read_json
from lib.core.params import load_section, load_seed
from lib.core.runtime import peak_flops, setup_torch
from lib.core.stage import run_stage
from lib.data.prefetch import Prefetcher
from lib.data.shards import META_FILE, concat_tokens, open_split
from lib.data.val_windows import val_windows
from lib.data.windows import TrainWindows
from lib.eval.validation import bits_per_byte, mean_loss, unigram_entropy
from lib.hf.import_ import init_model
from lib.infer.samples import continuations
from lib.tokenizer import Tokenizer
from lib.core import distributed as D
from lib.train.distributed import model_state
from lib.train.pretrain import PretrainParams
from lib.train.scaffold import TrainingRun

SHARDS = Path("data/shards")


def main() -> None:
    params, seed = load_section("pretrain", PretrainParams), load_seed()
    device = setup_torch(params.device, params.threads, seed, D.env_local_rank())
    ctx = D.init_distributed(device, params.parallel)
    tokenizer = Tokenizer.load("models/tokenizer")
    train_shards, val_shards = (open_split(SHARDS / split, tokenizer.sha256) for split in ("train", "val"))
    meta = read_json(SHARDS / META_FILE)
    # scratch: a fresh GPT; a base: imported, vocabulary grown to the tokenizer's (same on every rank)
    model, init_info = init_model(params.init, tokenizer, params.model)
    model = model.to(device)
    with TrainingRun("pretrain", model, tokenizer, params, seed, ctx) as run:
        if ctx.enabled:
            torch.manual_seed(seed + ctx.rank)  # but each rank its own dropout masks
        windows = TrainWindows(train_shards, params.seq_len, params.batch_size, seed, rank=ctx.rank,
                               world_size=ctx.world_size, pin_memory=device.type == "cuda")
        # GPU: build batches in loader workers so the GPU never waits; CPU: the cores are busy training.
        batch = Prefetcher(windows, num_workers=2) if device.type == "cuda" else windows.batch

        def evaluate() -> float:
            return mean_loss(model, val_windows(val_shards, params.seq_len, params.batch_size, params.eval_batches,
                                                rank=ctx.rank, world_size=ctx.world_size), device, ctx)

        def sample(step: int) -> dict[str, str]:
            return continuations(model, tokenizer, params.sample_prompts, params.sample_tokens)

        flops = model.flops_per_token(params.seq_len)
        plan = params.plan(ctx.world_size, flops, peak_flops(device, params.peak_tflops))
        shards = [s["sha256"] for s in meta["splits"]["train"]["shards"]]
        result = run.train(plan, device, batch, evaluate, sample, inputs=[*shards, f"world_size={ctx.world_size}"])
        final = model_state(model, ctx)  # collective under FSDP
        val = meta["splits"]["val"]
        bpb = lambda loss: round(bits_per_byte(loss, val["tokens"], val["text_bytes"]), 4)  # noqa: E731
        init_val_loss = result.val_curve[0][2]  # step 0, before any update: the base's (or random weights') loss
        figures = {"params": model.num_params(), "flops_per_token": flops, "processes": ctx.world_size, **init_info,
                   "best_val_bpb": bpb(result.best_val_loss), "init_val_loss": round(init_val_loss, 4),
                   "init_val_bpb": bpb(init_val_loss),
                   "val_unigram_entropy": round(unigram_entropy(concat_tokens(val_shards)), 4)}
        run.save(result, result.best_model, final, result.samples, figures,
                 f"({bpb(result.best_val_loss):.4f} bits/byte), {result.tokens_per_s:.0f} tok/s")


if __name__ == "__main__":
    run_stage(main)
