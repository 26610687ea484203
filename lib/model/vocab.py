"""Vocabulary growth: append embedding (and untied head) rows for tokens added to a base tokenizer.

Each new row starts as the mean of the rows of the pieces the base used for that token's text:
the model first reads "MPI_Allreduce" roughly as it read "MPI" "_" "All" "reduce", instead of as
noise that continued pretraining must first undo. Existing rows (and ids) are left untouched.
"""
from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import torch

from lib.core.errors import UserError
from lib.model.gpt import GPT


def mean_rows(weight: torch.Tensor, pieces: Sequence[Sequence[int]]) -> torch.Tensor:
    """One row per entry of ``pieces``: the mean of ``weight``'s rows at those ids."""
    rows = []
    for ids in pieces:
        if not ids:
            raise UserError("an added token has no base pieces to initialise its embedding from")
        rows.append(weight[torch.tensor(list(ids))].mean(dim=0))
    return torch.stack(rows) if rows else weight.new_zeros((0, weight.shape[1]))


@torch.no_grad()
def grow_vocab(model: GPT, pieces: Sequence[Sequence[int]]) -> GPT:
    """A copy of ``model`` with ``len(pieces)`` new token ids after its last one."""
    if not pieces:
        return model
    old = model.cfg.vocab_size
    if max(max(ids) for ids in pieces) >= old:
        raise UserError(f"an added token's base pieces reach id {max(max(ids) for ids in pieces)}, "
                        f"beyond the base vocabulary of {old}")
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    state["embed.weight"] = torch.cat([state["embed.weight"], mean_rows(state["embed.weight"], pieces)])
    if model.cfg.tie_embeddings:
        state.pop("lm_head.weight", None)  # the same tensor as embed.weight
    else:
        state["lm_head.weight"] = torch.cat([state["lm_head.weight"], mean_rows(state["lm_head.weight"], pieces)])
    grown = GPT(replace(model.cfg, vocab_size=old + len(pieces)))
    missing, unexpected = grown.load_state_dict(state, strict=False)
    assert not unexpected and set(missing) <= {"lm_head.weight"}, (missing, unexpected)
    return grown.to(next(model.parameters()).device)
