"""The one batch type every consumer reads: the training loop, validation, SFT and eval."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Batch:
    """Token ids to read (``inputs``) and to predict (``targets``), both (batch, seq_len). SFT adds
    ``loss_mask`` (1 where the loss is taken); without one every target is scored."""
    inputs: torch.Tensor
    targets: torch.Tensor
    loss_mask: torch.Tensor | None = None

    @classmethod
    def from_rows(cls, rows: np.ndarray, pin: bool = False) -> Batch:
        """Windows of ``seq_len + 1`` tokens as inputs (all but the last) and targets (all but the first)."""
        # Separate contiguous inputs and targets: a strided view would be copied through pageable
        # memory on its way to the GPU, losing the non-blocking transfer.
        batch = cls(torch.from_numpy(np.ascontiguousarray(rows[:, :-1])),
                    torch.from_numpy(np.ascontiguousarray(rows[:, 1:])))
        return batch.pin_memory() if pin else batch

    @classmethod
    def right_padded(cls, sequences: list[list[int]], masks: list[list[int]], pad_id: int) -> Batch:
        """Token sequences of different lengths, each read to predict its next token, right-padded
        to the longest; ``masks[i][t]`` says whether token ``t`` of sequence ``i`` is scored (a
        sequence's first token never is: nothing predicts it). Padding is never scored.

        No attention mask is needed: under causal attention a real token only attends to earlier
        positions, which are all real, so each row's logits are those of the row alone."""
        width = max(len(s) for s in sequences) - 1
        x = torch.full((len(sequences), width), pad_id, dtype=torch.long)
        y = torch.full((len(sequences), width), pad_id, dtype=torch.long)
        m = torch.zeros((len(sequences), width), dtype=torch.long)
        for i, (ids, mask) in enumerate(zip(sequences, masks)):
            n = len(ids) - 1
            x[i, :n] = torch.tensor(ids[:-1])
            y[i, :n] = torch.tensor(ids[1:])
            m[i, :n] = torch.tensor(mask[1:])
        return cls(x, y, m)

    @property
    def scored_tokens(self) -> int:
        """Targets the loss is taken on: the weight of this batch's mean loss in a token average."""
        return self.targets.numel() if self.loss_mask is None else int((self.loss_mask != 0).sum())

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return Batch(*(None if t is None else t.to(device, non_blocking=non_blocking) for t in self._tensors()))

    def pin_memory(self) -> Batch:
        # also what torch's DataLoader calls on a batch object when it pins in its own thread
        return Batch(*(None if t is None else t.pin_memory() for t in self._tensors()))

    def rows(self, index: slice) -> Batch:
        """The same rows of each tensor: a rank's share of a global batch."""
        return Batch(*(None if t is None else t[index] for t in self._tensors()))

    def _tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        return self.inputs, self.targets, self.loss_mask
