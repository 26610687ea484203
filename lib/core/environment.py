"""What a stage ran on: package versions, Python, platform, device and git commit.

Recorded next to the metrics (``metrics/env/<stage>.json``), outside every hashed DVC output,
so two runs can be told apart when their figures differ without breaking reproducibility.
"""
from __future__ import annotations

import platform
import subprocess
import sys
from importlib import metadata

PACKAGES = ("torch", "numpy", "sentencepiece", "pymupdf", "beautifulsoup4", "safetensors", "dvc", "pyyaml")


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def describe_environment() -> dict:
    info = {
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "packages": {p: _version(p) for p in PACKAGES},
        "git_commit": _git_commit(),
    }
    if "torch" in sys.modules:  # only stages that use torch pay for importing it
        import torch

        info["torch_threads"] = torch.get_num_threads()
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return info
