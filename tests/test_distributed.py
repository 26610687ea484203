"""Two CPU processes (gloo) training with DDP, and with FSDP2, end with the weights and val losses
of one process given the same global batch: rank r takes rows r::2 of each global batch and the
gradients are averaged. DDP also accumulates over two micro-batches (the no-sync path)."""
from __future__ import annotations

import os
import socket
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lib.core.distributed import DistContext, SINGLE
from lib.data.batch import Batch
from lib.train.distributed import model_state
from lib.model.config import ModelConfig
from lib.model.gpt import GPT
from lib.eval.validation import mean_loss
from lib.train.loop import train
from tests.fixtures_tiny import train_config

WORLD = 2
STEPS = 4


def make_model() -> GPT:
    torch.manual_seed(0)
    return GPT(ModelConfig(vocab_size=40, n_layer=2, n_head=2, n_kv_head=1, d_model=16, d_ff=32, max_seq_len=12))


def global_batch(i: int) -> Batch:
    starts = torch.randint(0, 40, (8, 1), generator=torch.Generator().manual_seed(i))
    rows = (starts + torch.arange(9)) % 40
    return Batch(rows[:, :-1], rows[:, 1:])


def loop(accum: int = 1):
    return train_config(steps=STEPS, lr=1e-2, min_lr=1e-3, warmup_steps=1, weight_decay=0.1, beta1=0.9,
                      beta2=0.95, grad_clip=0.5, eval_every=2, checkpoint_every=100, accum_steps=accum)


def run(ctx: DistContext, accum: int, state: Path):
    model = make_model()

    def batch(i: int):
        part = slice((i % accum) * 8 // accum, (i % accum + 1) * 8 // accum)  # micro-batch of the global batch
        return global_batch(i // accum).rows(part).rows(slice(ctx.rank, None, ctx.world_size))

    def evaluate():
        mine = global_batch(999).rows(slice(ctx.rank, None, ctx.world_size))
        return mean_loss(model, [mine], torch.device("cpu"), ctx)

    result = train(model, *loop(accum), torch.device("cpu"), batch, evaluate, state, "k", "dist", ctx=ctx)
    return model_state(model, ctx), result.val_curve


def worker(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=WORLD)
    try:
        for parallel, accum in (("ddp", 2), ("fsdp", 1)):
            ctx = DistContext(rank, WORLD, rank, parallel)
            weights, val_curve = run(ctx, accum, Path(out) / f"{parallel}-state.pt")
            if rank == 0:
                torch.save({"weights": weights, "val": val_curve}, Path(out) / f"{parallel}.pt")
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_and_fsdp_on_two_processes_match_one_process(tmp_path):
    mp.spawn(worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=True)
    reference, ref_val = run(SINGLE, 1, tmp_path / "single-state.pt")
    for parallel in ("ddp", "fsdp"):
        got = torch.load(tmp_path / f"{parallel}.pt", weights_only=True)
        assert got["weights"].keys() == reference.keys(), parallel
        for name, tensor in reference.items():
            torch.testing.assert_close(got["weights"][name], tensor, atol=2e-5, rtol=1e-4,
                                       msg=f"{parallel}: {name}")
        assert [v[0] for v in got["val"]] == [v[0] for v in ref_val]
        torch.testing.assert_close(torch.tensor([v[2] for v in got["val"]]), torch.tensor([v[2] for v in ref_val]),
                                   atol=1e-5, rtol=1e-5)
