"""Which process of a ``torchrun`` group this is, and joining or leaving the group: the context
that the data layer (a rank's share of the windows), evaluation (sums over ranks) and training
(DDP/FSDP, in ``lib.train.distributed``) all read. Without torchrun it is ``SINGLE``."""
from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistContext:
    """This process's place in the group: its rank, the group's size, its device index on the
    node, and how training shards the model (``ddp`` replicas or ``fsdp`` shards)."""
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    parallel: str = "ddp"

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def fsdp(self) -> bool:
        return self.enabled and self.parallel == "fsdp"


SINGLE = DistContext()


def env_local_rank() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def init_distributed(device: torch.device, parallel: str = "ddp") -> DistContext:
    """Join the process group torchrun describes in the environment (RANK, WORLD_SIZE, ...);
    NCCL between GPUs, gloo between CPU processes. One process: no group, ``SINGLE``."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return SINGLE
    if not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(minutes=30),
                                device_id=device if device.type == "cuda" else None)
    return DistContext(dist.get_rank(), dist.get_world_size(), env_local_rank(), parallel)


def shutdown(ctx: DistContext) -> None:
    if ctx.enabled and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
