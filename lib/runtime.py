"""Device, threads and seeding: the few global torch settings a stage makes, in one place."""
from __future__ import annotations

import contextlib
import random

import numpy as np
import torch

from lib.errors import UserError


def setup_torch(device: str, threads: int, seed: int) -> torch.device:
    """Seed everything and pick the device. On CPU, a fixed thread count and deterministic
    algorithms make runs bit-reproducible; on CUDA, TF32 matmuls are allowed for speed."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise UserError("device: cuda was requested but no CUDA device is available; set device: cpu or auto")
    if device not in ("cpu", "cuda"):
        raise UserError(f"device: expected cpu, cuda or auto, got {device!r}")
    torch.set_num_threads(threads)
    random.seed(seed)
    np.random.seed(seed % (1 << 32))
    torch.manual_seed(seed)
    if device == "cpu":
        torch.use_deterministic_algorithms(True, warn_only=True)
    else:
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    return torch.device(device)


def autocast(device: torch.device):
    """bf16 autocast on CUDA; full fp32 on CPU (where bf16 is slow and not bit-stable)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
