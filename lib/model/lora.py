"""LoRA: train a low-rank update B A of chosen linear layers, then merge it into their weights.

``apply_lora`` wraps the target ``nn.Linear`` modules (matched by their own name, e.g. ``wq`` or
``w_down``) and freezes everything else; ``merge_lora`` folds W + (alpha / r) B A back into plain
``nn.Linear`` modules, so the saved model has exactly the keys and format of a fully trained one.
B starts at zero, so the wrapped model starts equal to the base model.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn as nn

from lib.core.params import check
from lib.model.gpt import GPT

# Every linear layer of a block in lib/model/gpt.py; the embedding and the (tied) head are never targets.
ALL_TARGETS = ("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down")


@dataclass
class LoRAParams:
    enabled: bool = False
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.05
    targets: list[str] = field(default_factory=lambda: ["wq", "wk", "wv", "wo"])

    def __post_init__(self):
        check(self.rank >= 1, "rank", "must be >= 1")
        check(self.alpha > 0, "alpha", "must be > 0")
        check(0.0 <= self.dropout < 1.0, "dropout", "must be in [0, 1)")
        unknown = sorted(set(self.targets) - set(ALL_TARGETS))
        check(not unknown, "targets", f"unknown module names {unknown}; choose from {list(ALL_TARGETS)}")
        check(bool(self.targets), "targets", f"needs at least one of {list(ALL_TARGETS)}")


class LoRALinear(nn.Module):
    """``base(x) + (alpha / r) * B(A(dropout(x)))`` with ``base`` frozen."""

    def __init__(self, base: nn.Linear, rank: int, alpha: float, dropout: float):
        super().__init__()
        self.base = base
        self.scale = alpha / rank
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, device=base.weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # as nn.Linear; the LoRA paper's choice
        self.drop = nn.Dropout(dropout)
        base.weight.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = self.drop(x) @ self.lora_A.t().to(x.dtype) @ self.lora_B.t().to(x.dtype)
        return self.base(x) + self.scale * update

    def merged(self) -> nn.Linear:
        with torch.no_grad():
            delta = (self.lora_B.float() @ self.lora_A.float()) * self.scale
            self.base.weight += delta.to(self.base.weight.dtype)
        self.base.weight.requires_grad_(True)
        return self.base


def apply_lora(model: nn.Module, params: LoRAParams) -> list[str]:
    """Wrap every target linear layer of ``model`` in place, freeze all other parameters and
    return the wrapped modules' names."""
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = []
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if child_name in params.targets and isinstance(child, nn.Linear):
                setattr(module, child_name, LoRALinear(child, params.rank, params.alpha, params.dropout))
                wrapped.append(f"{name}.{child_name}" if name else child_name)
    if not wrapped:
        raise ValueError(f"no linear layer named {params.targets} in the model")
    return wrapped


def merge_lora(model: nn.Module) -> int:
    """Replace every LoRALinear by its base layer with the update folded in; returns the count.
    Afterwards all parameters are trainable again, as in a freshly loaded model."""
    count = 0
    for module in list(model.modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, LoRALinear):
                setattr(module, child_name, child.merged())
                count += 1
    for p in model.parameters():
        p.requires_grad_(True)
    return count


def lora_parameter_count(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def merged_weights(config, state: dict[str, torch.Tensor], params: LoRAParams) -> dict[str, torch.Tensor]:
    """Plain-model weights from the state dict of a model trained with adapters (unchanged when
    it has none): what is saved, so every saved model loads without LoRA."""
    if not any(name.endswith("lora_A") for name in state):
        return state
    model = GPT(config)
    apply_lora(model, params)
    model.load_state_dict(state)
    merge_lora(model)
    return model.state_dict()
