"""Data parallelism for the training loop: one process per device under ``torchrun``, with DDP
(replicated weights) or FSDP2 (sharded weights, gradients and optimizer state, for models that
do not fit one device). Without torchrun every helper degrades to the single-process case.
Which process this is (``DistContext``) and joining the group are ``lib.core.distributed``'s.

Rank r trains on rows r::world_size of each global batch, so N processes with batch_size b see
the same data as one process with batch_size N*b; gradients are averaged, hence the same update.
Checkpoints hold full (unsharded) state written by rank 0 and read by every rank, so multi-node
runs need ``checkpoints/`` on a shared disk.
"""
from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist
import torch.nn as nn

from lib.core.distributed import DistContext


def wrap(model: nn.Module, ctx: DistContext, device: torch.device) -> nn.Module:
    """The module to train through. DDP wraps (all-reduce of gradients in buckets, overlapped
    with the backward pass); FSDP2 shards ``model`` in place, each block its own unit so only
    one block's full weights are gathered at a time, and returns it."""
    if not ctx.enabled:
        return model
    if ctx.parallel == "ddp":
        from torch.nn.parallel import DistributedDataParallel as DDP
        return DDP(model, device_ids=[device.index] if device.type == "cuda" else None)
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
    # On GPU gather weights in bf16 (half the traffic) and reduce gradients in fp32 (exact sums).
    mp = MixedPrecisionPolicy(param_dtype=torch.bfloat16, reduce_dtype=torch.float32) \
        if device.type == "cuda" else MixedPrecisionPolicy()
    for block in model.blocks:
        fully_shard(block, mp_policy=mp)
    fully_shard(model, mp_policy=mp)  # the rest: embeddings (tied with lm_head), final norm
    return model


def grad_sync(module: nn.Module, ctx: DistContext, sync: bool):
    """Skip the gradient all-reduce on the micro-batches before the last of an accumulation."""
    if not ctx.enabled or sync:
        return contextlib.nullcontext()
    if ctx.parallel == "ddp":
        return module.no_sync()
    return _fsdp_no_sync(module)


@contextlib.contextmanager
def _fsdp_no_sync(module: nn.Module):
    module.set_requires_gradient_sync(False)
    try:
        yield
    finally:
        module.set_requires_gradient_sync(True)


def mean_across(value: torch.Tensor, ctx: DistContext) -> torch.Tensor:
    """The mean of a scalar over ranks (each rank's loss is the mean over its rows)."""
    if not ctx.enabled:
        return value
    value = value.detach().clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value / ctx.world_size


def from_main(value: float, ctx: DistContext) -> float:
    """Rank 0's value on every rank, so decisions (best model, early stop) never diverge."""
    if not ctx.enabled:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def gather(obj, ctx: DistContext) -> list:
    if not ctx.enabled:
        return [obj]
    out = [None] * ctx.world_size
    dist.all_gather_object(out, obj)
    return out


def full_tensor(t: torch.Tensor) -> torch.Tensor:
    """A DTensor (FSDP) as the whole tensor; a plain tensor as is."""
    return t.full_tensor() if hasattr(t, "full_tensor") else t


def model_state(model: nn.Module, ctx: DistContext) -> dict[str, torch.Tensor]:
    """The full model state on CPU on rank 0 ({} on other ranks). Collective under FSDP."""
    if ctx.fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict
        state = get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return state if ctx.is_main else {}
    if not ctx.is_main:
        return {}
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, ctx: DistContext) -> dict:
    if ctx.fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_optimizer_state_dict
        state = get_optimizer_state_dict(model, optimizer,
                                         options=StateDictOptions(full_state_dict=True, cpu_offload=True))
        return state if ctx.is_main else {}
    return optimizer.state_dict() if ctx.is_main else {}


def load_model_state(model: nn.Module, state: dict, ctx: DistContext) -> None:
    if ctx.fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict
        set_model_state_dict(model, state, options=StateDictOptions(full_state_dict=True))
    else:
        model.load_state_dict(state)


def load_optimizer_state(model: nn.Module, optimizer: torch.optim.Optimizer, state: dict,
                         ctx: DistContext) -> None:
    if ctx.fsdp:
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict
        set_optimizer_state_dict(model, optimizer, state, options=StateDictOptions(full_state_dict=True))
    else:
        optimizer.load_state_dict(state)
