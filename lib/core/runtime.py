"""Device, threads, seeding and precision: the few global torch settings a stage makes, in one place."""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import random
import sys

import numpy as np
import torch

from lib.core.errors import UserError

# Dense bf16 tensor-core peak FLOP/s by device-name fragment (vendor datasheets, no sparsity),
# for MFU. The first fragment found in torch.cuda.get_device_name() wins, so specific names first.
PEAK_BF16_FLOPS = (
    ("H200", 989e12), ("H100 PCIe", 756e12), ("H100", 989e12), ("GH200", 989e12),
    ("B200", 2250e12), ("A100", 312e12), ("A800", 312e12), ("L40S", 362e12), ("L4", 121e12),
    ("A10G", 70e12), ("A10", 125e12), ("RTX 4090", 165e12), ("RTX 3090", 71e12), ("V100", 125e12),
    ("MI300X", 1307e12), ("MI250", 362e12),
)


def setup_torch(device: str, threads: int, seed: int, local_rank: int = 0) -> torch.device:
    """Seed everything and pick the device (``cuda:local_rank`` under torchrun). On CPU, a fixed
    thread count and deterministic algorithms make runs bit-reproducible; on CUDA, TF32 matmuls
    are allowed for speed."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("device: cuda was requested but no CUDA device is available; set device: cpu or auto")
    if device not in ("cpu", "cuda"):
        raise UserError(f"device: expected cpu, cuda or auto, got {device!r}")
    torch.set_num_threads(threads)
    seed_all(seed)
    if device == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
        reuse_freed_memory()
        return torch.device("cpu")
    configure_cuda()
    torch.cuda.set_device(local_rank)
    return torch.device("cuda", local_rank)


def reuse_freed_memory() -> bool:
    """Keep large freed blocks in the process for the next allocation (glibc on Linux).

    glibc serves every block above its mmap threshold (32 MB at most) with a fresh mmap and
    unmaps it on free, so each logits-sized CPU tensor (batch x seq x vocab fp32: 67 MB at
    8 x 256 x 8192) page-faults and zeroes all its pages again, several times a step: the
    logits, the soft-cap, log-softmax and their gradients. Served from the heap, and the heap
    not trimmed, a step reuses the pages of the steps before it.

    It costs memory. An aligned request is a little larger than the block a freed tensor leaves,
    so the heap holds a few spare large blocks before it reaches a steady state, and the process
    keeps its peak until it exits. ``bench_model`` prints the peak RSS of its training section;
    ``--default-allocator`` measures without. Returns whether the setting took (False off glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2 ** 31 - 1))


def seed_all(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)


def configure_cuda() -> None:
    """TF32 for fp32 matmuls and convolutions (Ampere and later): ~8x the fp32 throughput for a
    mantissa that bf16 autocast truncates further anyway. Safe to call without a GPU."""
    torch.set_float32_matmul_precision("high")
    torch.backends.cudnn.allow_tf32 = True


def autocast(device: torch.device):
    """bf16 autocast on CUDA; full fp32 on CPU (where bf16 is slow and not bit-stable)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def peak_flops(device: torch.device, override_tflops: float = 0.0) -> float | None:
    """Peak bf16 FLOP/s of one device for MFU: the override if given, else looked up by the CUDA
    device's name; None on CPU or for an unknown GPU (MFU is then not reported)."""
    if override_tflops > 0:
        return override_tflops * 1e12
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((flops for fragment, flops in PEAK_BF16_FLOPS if fragment in name), None)


def mfu(flops_per_token: float, tokens_per_s: float, peak: float | None, n_devices: int = 1) -> float | None:
    """Model FLOPs utilisation: achieved training FLOP/s over the devices' combined peak."""
    if not peak or flops_per_token <= 0:
        return None
    return flops_per_token * tokens_per_s / (peak * n_devices)
