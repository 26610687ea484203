"""Optimizer construction: ``optimizer: adamw | muon`` with per-role learning rates.

Parameters fall into four roles. ``hidden``: the 2-D matrices inside the blocks (attention and
MLP projections). ``embed``: the token (and learned position) embeddings; tied to the head, the
one matrix is an embedding. ``head``: an untied output projection. ``gain``: norms' gains and
anything else below 2-D, never weight-decayed.

* ``adamw``: AdamW for every role (fused on CUDA), at ``lr`` unless ``embed_lr`` / ``head_lr``
  give those roles their own. With neither set, the groups are exactly the original two
  (matrices decayed, gains not).
* ``muon``: ``torch.optim.Muon`` (momentum, then a Newton-Schulz orthogonalisation of the update)
  for the hidden matrices at ``muon_lr``; AdamW for embeddings, head and gains. Muon is defined
  for matrices that map a hidden state to a hidden state: an embedding is a lookup table and the
  head's rows are per-token, so they keep Adam's per-coordinate steps.

Every group remembers its peak rate as ``initial_lr``; the loop scales all of them by the
schedule's factor (``set_lr``), so warmup and decay apply to every role alike.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn

from lib.core.errors import UserError
from lib.core.params import check

OPTIMIZERS = ("adamw", "muon")


@dataclass
class OptimParams:
    optimizer: str = "adamw"          # adamw | muon (hidden matrices; AdamW for the rest)
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
        check(self.optimizer in OPTIMIZERS, "optimizer", f"must be one of {', '.join(OPTIMIZERS)}")
        check(self.lr > 0 and self.muon_lr > 0, "lr", "lr and muon_lr must be > 0")
        for name in ("embed_lr", "head_lr"):
            value = getattr(self, name)
            check(value is None or value > 0, name, "must be > 0 or null (= lr)")
        check(0.0 <= self.muon_momentum < 1.0, "muon_momentum", "must be in [0, 1)")
        check(self.weight_decay >= 0 and self.muon_weight_decay >= 0, "weight_decay",
              "weight_decay and muon_weight_decay must be >= 0")


def param_roles(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """Trainable parameters by role (see the module docstring); each parameter once."""
    embed_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    head = getattr(model, "lm_head", None)
    head_ids = {id(head.weight)} - embed_ids if head is not None else set()
    roles: dict[str, list[nn.Parameter]] = {"hidden": [], "embed": [], "head": [], "gain": []}
    for p in model.parameters():  # parameters() yields a shared (tied) tensor once
        if not p.requires_grad:
            continue
        role = ("embed" if id(p) in embed_ids else "head" if id(p) in head_ids
                else "hidden" if p.dim() == 2 else "gain")
        roles[role].append(p)
    return roles


def _adamw_groups(roles: dict, p: OptimParams, with_hidden: bool) -> list[dict]:
    rates = {"hidden": p.lr, "embed": p.embed_lr or p.lr, "head": p.head_lr or p.lr}
    matrices = [r for r in ("hidden", "embed", "head") if with_hidden or r != "hidden"]
    groups = []
    if with_hidden and p.embed_lr is None and p.head_lr is None:  # the original two groups
        groups.append({"params": [q for r in matrices for q in roles[r]], "weight_decay": p.weight_decay,
                       "lr": p.lr, "role": "matrices"})
    else:
        groups += [{"params": roles[r], "weight_decay": p.weight_decay, "lr": rates[r], "role": r}
                   for r in matrices if roles[r]]
    groups.append({"params": roles["gain"], "weight_decay": 0.0, "lr": p.lr, "role": "gain"})
    return [{**g, "initial_lr": g["lr"]} for g in groups if g["params"]]


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


def build_optimizer(model: nn.Module, p: OptimParams, device: torch.device, fsdp: bool = False):
    """The optimizer ``p`` asks for (TrainParams is an OptimParams)."""
    roles = param_roles(model)
    fused = device.type == "cuda"
    if p.optimizer == "adamw":
        opt = torch.optim.AdamW(_adamw_groups(roles, p, with_hidden=True), lr=p.lr, betas=(p.beta1, p.beta2),
                                fused=fused)
    else:
        if fsdp:  # Newton-Schulz needs each whole matrix; FSDP holds shards of it
            raise UserError("params.yaml: optimizer: muon does not work with parallel: fsdp "
                            "(Muon orthogonalises whole matrices); use parallel: ddp or optimizer: adamw")
        if not roles["hidden"]:
            raise UserError("optimizer: muon found no trainable hidden matrices (LoRA? use optimizer: adamw)")
        hidden = {"params": roles["hidden"], "lr": p.muon_lr, "initial_lr": p.muon_lr, "role": "hidden"}
        muon = torch.optim.Muon([hidden], lr=p.muon_lr,
                                weight_decay=p.muon_weight_decay, momentum=p.muon_momentum, nesterov=True)
        adamw = torch.optim.AdamW(_adamw_groups(roles, p, with_hidden=False), lr=p.lr,
                                  betas=(p.beta1, p.beta2), fused=fused)
        opt = MuonAdamW(muon, adamw)
    return opt


def set_lr(optimizer, lr: float, peak: float = 1.0) -> None:
    """The schedule's ``lr`` (peaking at ``peak``) for every group: groups at ``peak`` get ``lr``
    itself (bit for bit what a one-rate optimizer gets), the others their rate scaled alike.
    With the default ``peak`` of 1, ``lr`` is the schedule's factor for every group's own rate."""
    for group in optimizer.param_groups:
        group["lr"] = lr if group["initial_lr"] == peak else group["initial_lr"] * (lr / peak)
