"""Decode-time weights: transposed copies of every projection, prepared once before generation.

Decoding reads every weight once per token, and on CPU ``x @ W^T`` over the (out, in) weight
streamed it from memory at about half the speed of ``x @ M`` over an (in, out) matrix (with the
SwiGLU change alongside, bench_model's generation went from 1.06x to about 1.5x Hugging Face's
Llama). ``prepare_for_decode`` installs, on each projection of the model (the attention's
concatenated q/k/v, SwiGLU's gate/up, and every ``nn.Linear``: output, down, head), a
``DecodeProjection`` that keeps the weights concatenated and transposed, made once and remade
only when a weight changes (an optimizer step or ``load_state_dict`` bumps the tensor's
version, a move changes its storage). It costs one extra copy of the weights while the model
is prepared.

The copy serves only inputs of at most ``DECODE_ROWS`` rows without gradients on CPU; training,
compiling, prefill and evaluation, and layers wrapped by LoRA take the model's own (training)
path, so a prepared model trains and evaluates exactly as before. Nothing here is a module or a
parameter: the state dict, checkpoints and exports do not see it.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from lib.model.layers import Attention, SwiGLU

DECODE_ROWS = 8  # inputs of at most this many rows (batch x tokens) take the transposed copy

# module type -> (its method that projects, the layers that method concatenates)
FUSED_PROJECTIONS = {Attention: ("qkv", ("wq", "wk", "wv")), SwiGLU: ("gate_up", ("w_gate", "w_up"))}


def decode_sized(x: torch.Tensor) -> bool:
    """A few rows, no gradients, CPU, eager: the one-token steps after prefill."""
    return (not torch.is_grad_enabled() and not torch.compiler.is_compiling() and x.device.type == "cpu"
            and x.numel() <= DECODE_ROWS * x.shape[-1])


class DecodeProjection:
    """Stands in for ``owner.<method>`` (or an ``nn.Linear``'s ``forward``): ``x @ M`` over the
    kept (in, out) copy of the named layers' weights for decode-sized inputs, the owner's own
    method otherwise. The layers are looked up at each call: LoRA may have wrapped them since."""

    def __init__(self, owner: nn.Module, method, names: tuple[str, ...] = ()):
        self.owner, self.method, self.names = owner, method, names
        self.key, self.weight_t = None, None

    def layers(self) -> list[nn.Module]:
        return [getattr(self.owner, n) for n in self.names] if self.names else [self.owner]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        layers = self.layers()
        if not decode_sized(x) or any(type(m) is not nn.Linear for m in layers):
            return self.method(self.owner, x)
        key = tuple((m.weight.data_ptr(), m.weight._version, m.weight.dtype) for m in layers)
        if key != self.key:
            self.key, self.weight_t = key, torch.cat([m.weight for m in layers]).t().contiguous()
        return x @ self.weight_t


def prepare_for_decode(model: nn.Module) -> nn.Module:
    """Install the decode path on every projection of ``model`` (in place; a second call, or a
    call after new layers appeared, prepares only what is not prepared yet). The copies are made
    at the first decode-sized call and kept until a weight changes. Returns ``model``."""
    for module in model.modules():
        fused = next((v for k, v in FUSED_PROJECTIONS.items() if type(module) is k), None)
        if fused is not None and not isinstance(module.__dict__.get(fused[0]), DecodeProjection):
            method, names = fused
            setattr(module, method, DecodeProjection(module, getattr(type(module), method), names))
        elif type(module) is nn.Linear and module.bias is None and not is_prepared_linear(module):
            module.forward = DecodeProjection(module, nn.Linear.forward)
    return model


def is_prepared_linear(module: nn.Module) -> bool:
    return isinstance(module.__dict__.get("forward"), DecodeProjection)


def release_decode(model: nn.Module) -> None:
    """Remove what ``prepare_for_decode`` installed (and its copies): the plain model again."""
    for module in model.modules():
        for name in [k for k, v in module.__dict__.items() if isinstance(v, DecodeProjection)]:
            delattr(module, name)
