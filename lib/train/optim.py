"""Optimizer construction: ``optimizer:`` names an entry of ``OPTIMIZERS``, with per-role rates.

Parameters fall into four roles. ``hidden``: the 2-D matrices inside the blocks (attention and
MLP projections). ``embed``: the token (and learned position) embeddings; tied to the head, the
one matrix is an embedding. ``head``: an untied output projection. ``gain``: norms' gains and
anything else below 2-D, never weight-decayed.

* ``adamw``: AdamW for every role (fused on CUDA), at ``lr`` unless ``embed_lr`` / ``head_lr``
  give those roles their own. With neither set, the groups are exactly the original two
  (matrices decayed, gains not).
* ``muon``: Muon (momentum, then a Newton-Schulz orthogonalisation of the update; torch's,
  batched over same-shape matrices: ``lib.train.muon``) for the hidden matrices at ``muon_lr``; AdamW for embeddings, head and gains. Muon is defined
  for matrices that map a hidden state to a hidden state: an embedding is a lookup table and the
  head's rows are per-token, so they keep Adam's per-coordinate steps.

A new optimizer is one builder function and one entry in ``OPTIMIZERS``: the builder gets the
parameters already split by role (``param_roles``; ``role_groups`` makes the usual decayed /
undecayed groups) and returns the optimizer. ``build_optimizer`` does the shared part once: it
checks that every trainable parameter is in exactly one group and has every group remember its
peak rate as ``initial_lr``; the loop scales all of them by the schedule's factor (``set_lr``),
so warmup and decay apply to every role alike.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn as nn

from lib.core.errors import UserError
from lib.core.params import check, check_choice
from lib.train.muon import BatchedMuon

Roles = dict[str, list[nn.Parameter]]


@dataclass
class OptimParams:
    optimizer: str = "adamw"          # a key of OPTIMIZERS: adamw | muon (hidden matrices; AdamW for the rest)
    lr: float = 3e-3                  # AdamW's peak rate (every role it serves unless set below)
    weight_decay: float = 0.1         # matrices only (hidden, embeddings, head), never gains
    beta1: float = 0.9
    beta2: float = 0.95
    embed_lr: float | None = None     # token/position embeddings' AdamW rate; None: = lr
    head_lr: float | None = None      # an untied head's AdamW rate; None: = lr
    muon_lr: float = 0.02             # Muon's peak rate for the hidden matrices
    muon_momentum: float = 0.95
    muon_weight_decay: float = 0.0    # Muon's decoupled decay (lr * wd a step, at Muon's ~10x larger lr)

    def __post_init__(self):
        check_choice(self.optimizer, OPTIMIZERS, "optimizer", "optimizer")
        check(self.lr > 0 and self.muon_lr > 0, "lr", "lr and muon_lr must be > 0")
        for name in ("embed_lr", "head_lr"):
            value = getattr(self, name)
            check(value is None or value > 0, name, "must be > 0 or null (= lr)")
        check(0.0 <= self.muon_momentum < 1.0, "muon_momentum", "must be in [0, 1)")
        check(self.weight_decay >= 0 and self.muon_weight_decay >= 0, "weight_decay",
              "weight_decay and muon_weight_decay must be >= 0")


def param_roles(model: nn.Module) -> Roles:
    """Trainable parameters by role (see the module docstring); each parameter once."""
    embed_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    head = getattr(model, "lm_head", None)
    head_ids = {id(head.weight)} - embed_ids if head is not None else set()
    roles: Roles = {"hidden": [], "embed": [], "head": [], "gain": []}
    for p in model.parameters():  # parameters() yields a shared (tied) tensor once
        if not p.requires_grad:
            continue
        role = ("embed" if id(p) in embed_ids else "head" if id(p) in head_ids
                else "hidden" if p.dim() == 2 else "gain")
        roles[role].append(p)
    return roles


def role_groups(roles: Roles, p: OptimParams, with_hidden: bool = True, width_mult: float = 1.0) -> list[dict]:
    """AdamW-style groups: matrices decayed at ``lr`` (embeddings and head at their own rates when
    set), gains undecayed; ``with_hidden=False`` leaves the hidden matrices to another optimizer.
    ``width_mult`` (ModelConfig.width_mult) scales the rates tuned at the base width: the hidden
    matrices at lr / width_mult (muP's rule for Adam), every other role at its rate times
    sqrt(width_mult) (measured, below)."""
    # muP keeps the embeddings', output matrix's and gains' Adam rates constant with width. Under the
    # shipped recipe their best rate grew instead: swept alone (Muon held, 120 equal-token steps on the
    # Debian docs) the parabola through each width's three best points peaks at 0.058 at 128 wide, 0.082
    # at 384 and 0.098 at 512, a width exponent of ~0.35; sqrt's factors (1, 1.73, 2) take 0.048 to the
    # best grid point at 128 and 512 and to the peak at 384 (bench/results/lr_sweep_adamw_groups.json).
    other = math.sqrt(width_mult)
    rates = {"hidden": p.lr / width_mult, "embed": (p.embed_lr or p.lr) * other, "head": (p.head_lr or p.lr) * other}
    matrices = [r for r in ("hidden", "embed", "head") if with_hidden or r != "hidden"]
    groups = []
    if with_hidden and p.embed_lr is None and p.head_lr is None and width_mult == 1.0:  # the original two groups
        groups.append({"params": [q for r in matrices for q in roles[r]], "weight_decay": p.weight_decay,
                       "lr": p.lr, "role": "matrices"})
    else:
        groups += [{"params": roles[r], "weight_decay": p.weight_decay, "lr": rates[r], "role": r}
                   for r in matrices if roles[r]]
    groups.append({"params": roles["gain"], "weight_decay": 0.0, "lr": p.lr * other, "role": "gain"})
    return [g for g in groups if g["params"]]


@dataclass(frozen=True)
class Target:
    """Where the optimizer will run, for builders that care."""
    fused: bool = False  # CUDA: fused kernels are available
    fsdp: bool = False   # the parameters are FSDP shards, not whole tensors
    width_mult: float = 1.0  # the model's d_model / base_width (muP rates; 1: as tuned or no scaling)


class MuonAdamW:
    """Muon for the hidden matrices and AdamW for the rest, stepped together. Presents the
    optimizer surface the loop uses (param_groups, step, zero_grad, state_dict,
    load_state_dict); the state holds both optimizers' states, so a resumed run is exact."""

    def __init__(self, muon: torch.optim.Optimizer, adamw: torch.optim.Optimizer):
        self.muon, self.adamw = muon, adamw

    @property
    def param_groups(self) -> list[dict]:
        return self.muon.param_groups + self.adamw.param_groups

    def step(self) -> None:
        self.muon.step()
        self.adamw.step()

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.muon.zero_grad(set_to_none=set_to_none)
        self.adamw.zero_grad(set_to_none=set_to_none)

    def state_dict(self) -> dict:
        return {"muon": self.muon.state_dict(), "adamw": self.adamw.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        if set(state) != {"muon", "adamw"}:
            raise ValueError("optimizer state is not a Muon+AdamW state (was the run started with adamw?)")
        self.muon.load_state_dict(state["muon"])
        self.adamw.load_state_dict(state["adamw"])


def adamw(roles: Roles, p: OptimParams, target: Target):
    return torch.optim.AdamW(role_groups(roles, p, width_mult=target.width_mult), lr=p.lr, betas=(p.beta1, p.beta2), fused=target.fused)


def muon(roles: Roles, p: OptimParams, target: Target):
    if target.fsdp:  # Newton-Schulz needs each whole matrix; FSDP holds shards of it
        raise UserError("params.yaml: optimizer: muon does not work with parallel: fsdp "
                        "(Muon orthogonalises whole matrices); use parallel: ddp or optimizer: adamw")
    if not roles["hidden"]:
        raise UserError("optimizer: muon found no trainable hidden matrices (LoRA? use optimizer: adamw)")
    # No width factor on muon_lr: the "original" shape adjustment, sqrt(max(1, rows / cols)), already
    # gives the update a spectral norm of ~sqrt(fan_out / fan_in) times the rate, the spectral condition
    # for feature learning (Yang, Simon & Bernstein, arXiv:2310.17813), which does not change when
    # both sides of a matrix grow together; RMS matching (Moonlight, arXiv:2502.16982: 0.2 *
    # sqrt(max(rows, cols))) would grow the rate as sqrt(width) instead. Measured: muon_lr *
    # sqrt(width_mult) trained worse at 6 x 384 at every multiplier (bench/results/lr_sweep_muon_sqrt_width.json).
    hidden = {"params": roles["hidden"], "lr": p.muon_lr, "role": "hidden"}
    matrices = BatchedMuon([hidden], lr=p.muon_lr, weight_decay=p.muon_weight_decay,
                           momentum=p.muon_momentum, nesterov=True)
    rest = torch.optim.AdamW(role_groups(roles, p, with_hidden=False, width_mult=target.width_mult), lr=p.lr, betas=(p.beta1, p.beta2),
                             fused=target.fused)
    return MuonAdamW(matrices, rest)


# name -> builder(roles, params, target) returning an optimizer (anything with param_groups, step,
# zero_grad, state_dict and load_state_dict); ``optimizer:`` in params.yaml names one.
OPTIMIZERS: dict[str, Callable[[Roles, OptimParams, Target], object]] = {"adamw": adamw, "muon": muon}


def build_optimizer(model: nn.Module, p: OptimParams, device: torch.device, fsdp: bool = False):
    """The optimizer ``p`` asks for (TrainParams is an OptimParams), every group remembering its
    peak rate as ``initial_lr``; the rates are those at the model's base width, scaled to its own
    (ModelConfig.width_mult: AdamW's hidden matrices at lr / width_mult)."""
    roles = param_roles(model)
    cfg = getattr(model, "cfg", None)  # our GPT says its width scaling; any other module is as tuned
    width_mult = getattr(cfg, "width_mult", 1.0)
    opt = OPTIMIZERS[p.optimizer](roles, p, Target(fused=device.type == "cuda", fsdp=fsdp, width_mult=width_mult))
    grouped = [id(q) for g in opt.param_groups for q in g["params"]]
    trainable = {id(q) for r in roles.values() for q in r}
    if len(grouped) != len(set(grouped)) or set(grouped) != trainable:
        raise ValueError(f"optimizer {p.optimizer}: its groups must hold every trainable parameter once")
    for group in opt.param_groups:
        group["initial_lr"] = group["lr"]
    return opt


def set_lr(optimizer, lr: float, peak: float = 1.0) -> None:
    """The schedule's ``lr`` (peaking at ``peak``) for every group: groups at ``peak`` get ``lr``
    itself (bit for bit what a one-rate optimizer gets), the others their rate scaled alike.
    With the default ``peak`` of 1, ``lr`` is the schedule's factor for every group's own rate."""
    for group in optimizer.param_groups:
        group["lr"] = lr if group["initial_lr"] == peak else group["initial_lr"] * (lr / peak)
