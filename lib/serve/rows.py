"""The KV cache of a batch whose rows come and go: continuous batching's memory.

Each layer's keys and values live in one (B, H, capacity, D) buffer; every row's latest token
sits in the last column, so one forward of B new tokens advances every row. Rows are
left-padded to a common width and a (B, S) ``valid`` mask hides each row's padding from
attention. A new row joins by right-aligning its prefilled keys with the running ones; a
finished row leaves by index; columns no live row uses any more are trimmed from the left, so
the width never exceeds the longest live row.
"""
from __future__ import annotations

import torch


class LayerCache:
    """One layer's keys and values; ``update`` is what the attention layer calls."""

    def __init__(self, k: torch.Tensor | None = None, v: torch.Tensor | None = None):
        self._k, self._v = k, v
        self.length = 0 if k is None else k.shape[2]

    @property
    def k(self) -> torch.Tensor:
        return self._k[:, :, :self.length]

    @property
    def v(self) -> torch.Tensor:
        return self._v[:, :, :self.length]

    def update(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        end = self.length + k.shape[2]
        if self._k is None:
            self._k, self._v = k, v
        else:
            if end > self._k.shape[2]:  # double the room: a copy per doubling, not per token
                self._resize(max(end, 2 * self._k.shape[2]))
            self._k[:, :, self.length:end] = k
            self._v[:, :, self.length:end] = v
        self.length = end
        return self.k, self.v

    def _resize(self, capacity: int) -> None:
        B, H, _, D = self._k.shape
        k, v = self._k.new_empty(B, H, capacity, D), self._v.new_empty(B, H, capacity, self._v.shape[-1])
        k[:, :, :self.length], v[:, :, :self.length] = self.k, self.v
        self._k, self._v = k, v

    def keep(self, rows: torch.Tensor, first_col: int) -> None:
        """Only ``rows``, from column ``first_col`` on (a fresh compact copy)."""
        self._k = self.k[rows, :, first_col:].contiguous()
        self._v = self.v[rows, :, first_col:].contiguous()
        self.length = self._k.shape[2]

    def join(self, other: "LayerCache") -> None:
        """Append ``other``'s rows below ours, right-aligned (the shorter side is padded on the left)."""
        if self._k is None or self._k.shape[0] == 0:
            self._k, self._v, self.length = other.k.contiguous(), other.v.contiguous(), other.length
            return
        S = max(self.length, other.length)
        ks = [_left_pad(t, S) for t in (self.k, other.k)]
        vs = [_left_pad(t, S) for t in (self.v, other.v)]
        self._k, self._v, self.length = torch.cat(ks), torch.cat(vs), S


def _left_pad(t: torch.Tensor, width: int) -> torch.Tensor:
    pad = width - t.shape[2]
    if pad == 0:
        return t
    return torch.cat([t.new_zeros(t.shape[0], t.shape[1], pad, t.shape[3]), t], dim=2)


def join_valid(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The (B, S) masks of two row groups stacked, right-aligned, padding marked invalid."""
    S = max(a.shape[1], b.shape[1])
    pad = lambda m: torch.cat([m.new_zeros(m.shape[0], S - m.shape[1]), m], dim=1)  # noqa: E731
    return torch.cat([pad(a), pad(b)])
