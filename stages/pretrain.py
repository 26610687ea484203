"""pretrain: train the decoder-only transformer on the packed shards; keep the best-by-val weights.

One process: `python -m stages.pretrain` (what `dvc repro` runs). Several GPUs or nodes: the same
module under `torchrun` (see README); `pretrain.parallel` picks DDP or FSDP.
"""
from pathlib import Path

import torch

from lib.train import distributed as D
from lib.attention import load_attention_params, wrap_for_external
from lib.data.prefetch import Prefetcher
from lib.data.windows import TrainWindows
from lib.data.val_windows import val_windows
from lib.core.distributed import env_local_rank, init_distributed, shutdown
from lib.core.stage import run_stage
from lib.eval.validation import bits_per_byte, mean_loss, unigram_entropy
from lib.core.io import read_json, write_json
from lib.train.curves import write_curves
from lib.core.params import load_section, load_seed
from lib.infer.samples import continuations
from lib.model.checkpoint import save_best_and_final
from lib.train.pretrain import PretrainParams
from lib.train.state import run_key, run_metrics
from lib.core.runtime import peak_flops, setup_torch
from lib.data.shards import META_FILE, concat_tokens, open_split
from lib.hf.import_ import init_model
from lib.tokenizer import Tokenizer
from lib.train.loop import finish, train

SHARDS = Path("data/shards")
OUT = Path("models/pretrain")            # best-by-val model; the last step's in OUT/final
STATE = Path("checkpoints/pretrain/state.pt")  # resumable state: git-ignored, not a DVC output
PLOTS = Path("metrics/plots/pretrain")
SAMPLES = Path("models/samples/pretrain.json")  # prose stays out of metrics: a cached output


def main() -> None:
    params, seed = load_section("pretrain", PretrainParams), load_seed()
    device = setup_torch(params.device, params.threads, seed, env_local_rank())
    ctx = init_distributed(device, params.parallel)
    tokenizer = Tokenizer.load("models/tokenizer")
    train_shards = open_split(SHARDS / "train", tokenizer.sha256)
    val_shards = open_split(SHARDS / "val", tokenizer.sha256)
    meta = read_json(SHARDS / META_FILE)

    # scratch: a fresh GPT; a base: imported, vocabulary grown to the tokenizer's (same on every rank)
    model, init_info = init_model(params.init, tokenizer, params.model)
    model, config = model.to(device), model.cfg
    attention = load_attention_params()
    attn = wrap_for_external(model, attention, tokenizer, output_dir=OUT)  # learned mode: a no-op
    if ctx.enabled:
        torch.manual_seed(seed + ctx.rank)  # but each rank its own dropout masks
    windows = TrainWindows(train_shards, params.seq_len, params.batch_size, seed, rank=ctx.rank,
                           world_size=ctx.world_size, pin_memory=device.type == "cuda")
    # GPU: build batches in loader workers so the GPU never waits; CPU: the cores are busy training.
    batch = Prefetcher(windows, num_workers=2) if device.type == "cuda" else windows.batch

    def evaluate() -> float:
        batches = val_windows(val_shards, params.seq_len, params.batch_size, params.eval_batches,
                              rank=ctx.rank, world_size=ctx.world_size)
        return mean_loss(model, batches, device, ctx)

    def sample(step: int) -> dict[str, str]:
        return continuations(model, tokenizer, params.sample_prompts, params.sample_tokens)

    key = run_key(params, seed, tokenizer.sha256, *(s["sha256"] for s in meta["splits"]["train"]["shards"]),
                  f"world_size={ctx.world_size}",
                  *([f"attention={attention.key()}"] if attention.mode == "external" else []))
    flops = model.flops_per_token(params.seq_len)
    plan = params.plan(ctx.world_size, flops, peak_flops(device, params.peak_tflops))
    result = train(model, params, plan, device, batch, evaluate, STATE, key, "pretrain", sample=sample, ctx=ctx)
    final = D.model_state(model, ctx)  # collective under FSDP

    if ctx.is_main:
        save_best_and_final(OUT, config, result.best_model, final, tokenizer.sha256,
                            {"stage": "pretrain", "best_step": result.best_step, "last_step": result.last_step,
                             "attention": attention.info()})
        write_curves(PLOTS, result)
        write_json(SAMPLES, result.samples)
        val = meta["splits"]["val"]
        bpb = lambda loss: round(bits_per_byte(loss, val["tokens"], val["text_bytes"]), 4)  # noqa: E731
        init_val_loss = result.val_curve[0][2]  # step 0, before any update: the base's (or random weights') loss
        write_json("metrics/pretrain.json", {
            "params": model.num_params(), "flops_per_token": flops, "processes": ctx.world_size, **init_info,
            **run_metrics(result, params.steps), "best_val_bpb": bpb(result.best_val_loss),
            "val_unigram_entropy": round(unigram_entropy(concat_tokens(val_shards)), 4),
            "init_val_loss": round(init_val_loss, 4), "init_val_bpb": bpb(init_val_loss), **attn.metrics()})
        print(f"pretrain: {result.last_step} steps, best val loss {result.best_val_loss:.4f} at step "
              f"{result.best_step} ({bpb(result.best_val_loss):.4f} bits/byte), {result.tokens_per_s:.0f} tok/s; "
              f"model in {OUT} ({result.seconds:.0f} s)")
    finish(STATE, ctx)  # outputs are whole: the state has served its purpose
    if hasattr(batch, "close"):
        batch.close()
    shutdown(ctx)


if __name__ == "__main__":
    run_stage(main)
