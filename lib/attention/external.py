"""The external-attention seam: each layer applies a given causal attention matrix to its values.

``install_external_attention(model, source)`` replaces ``block.attn`` in every block by an
``ExternalAttention`` built around it (composition: ``lib.model.gpt`` and ``lib.model.layers`` are unchanged).
The wrapper takes over the original module's children under their own names, so ``state_dict``
keys -- and with them the checkpoint format -- stay exactly as in the learned mode; it uses the
value and output projections (``wv``, ``wo``) and leaves the query/key projections (``wq``, ``wk``)
unused and frozen (no gradient, no weight decay, nothing for DDP to wait for).

The matrix comes from an ``AttentionSource``: a forward pre-hook on the GPT sees each call's token
ids (and, when generating, the KV caches, start position and padding mask), looks every row's
whole sequence up in the score cache -- asking the provider on a miss -- and hands the layers a
(B, T, S) matrix: rows normalised over j <= i, the future and padding masked. With a KV cache the
new token's row is the last row of its whole prefix's matrix; a causal provider (the local one)
therefore gives exactly the full-forward result.
"""
from __future__ import annotations

import inspect

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lib.attention.cache import ScoreCache
from lib.attention.params import AttentionParams
from lib.attention.providers import AttentionError, BadReply, Provider, ProviderFailure, make_provider, validate_matrix
from lib.core.errors import UserError

FROZEN = ("wq", "wk")  # the learned attention's query/key projections: unused in external mode


def normalise(scores: np.ndarray) -> np.ndarray:
    """Rows of a lower-triangular score matrix scaled to sum to 1; an all-zero row (no preference)
    becomes uniform over j <= i."""
    m = np.tril(np.asarray(scores, dtype=np.float64))
    n = m.shape[0]
    sums = m.sum(axis=1, keepdims=True)
    uniform = np.tril(np.ones((n, n))) / np.arange(1, n + 1)[:, None]
    return np.where(sums > 0, m / np.where(sums > 0, sums, 1.0), uniform)


class AttentionSource:
    """Supplies the per-batch attention matrix through the cache and a provider; counts requests,
    cache hits and fallbacks."""

    def __init__(self, provider: Provider, cache: ScoreCache, tokenizer=None, on_bad_reply: str = "error",
                 pad_id: int | None = None):
        self.provider, self.cache, self.tokenizer = provider, cache, tokenizer
        self.on_bad_reply = on_bad_reply
        self.pad_id = pad_id
        self.fallbacks = 0
        self.current: torch.Tensor | None = None  # (B, T, S) for the forward in progress
        self._seq: torch.Tensor | None = None     # (B, S) tokens so far (generation)
        self._valid: torch.Tensor | None = None   # (B, S) real (not padding) tokens

    # -- one sequence --------------------------------------------------------------------------

    def matrix(self, token_ids: list[int]) -> np.ndarray:
        """The normalised (n, n) causal matrix of one sequence: cache first, then the provider."""
        p = self.provider
        scores = self.cache.get(p.name, p.model, token_ids)
        if scores is None:
            texts = [self._text(t) for t in token_ids]
            try:
                scores = validate_matrix(p.scores(token_ids, texts), len(token_ids))
            except (ProviderFailure, BadReply) as err:
                if self.on_bad_reply != "uniform":
                    if isinstance(err, BadReply):
                        raise ProviderFailure(f"attention provider {p.name}: {err}") from None
                    raise
                self.fallbacks += 1  # not cached: a later run asks again
                scores = np.tril(np.ones((len(token_ids),) * 2, dtype=np.float32))
            else:
                self.cache.put(p.name, p.model, token_ids, scores)
        return normalise(scores)

    def _text(self, token_id: int) -> str:
        if self.tokenizer is None:
            return str(token_id)
        return self.tokenizer.piece(int(token_id)).replace("\u2581", " ")

    # -- one forward ---------------------------------------------------------------------------

    def set_batch(self, idx: torch.Tensor, caches=None, start_pos: int = 0, attn_mask=None) -> torch.Tensor:
        """Prepare the matrix for ``model(idx, caches=..., start_pos=..., attn_mask=...)``."""
        idx_cpu = idx.detach().to("cpu", torch.long)
        B, T = idx_cpu.shape
        new_sequence = caches is None or start_pos == 0 or self._seq is None
        if new_sequence:
            self._seq = idx_cpu
        else:
            if self._seq.shape[0] != B:
                raise RuntimeError("external attention: batch size changed while continuing from a KV cache")
            self._seq = torch.cat([self._seq, idx_cpu], dim=1)
        S = self._seq.shape[1]
        if attn_mask is not None:
            mask = attn_mask if attn_mask.dtype == torch.bool else attn_mask > float("-inf")
            while mask.dim() < 4:
                mask = mask[None]
            self._valid = mask[:, 0, -1, :].detach().to("cpu").expand(B, S).clone()  # the last query sees all real keys
        elif new_sequence:
            self._valid = torch.ones(B, S, dtype=torch.bool)
            if caches is None and self.pad_id is not None:  # right padding (SFT batches): not sent to the provider
                trailing = (self._seq == self.pad_id).flip(1).int().cumprod(1).sum(1)
                for b in range(B):
                    self._valid[b, max(T - int(trailing[b]), 1):] = False
        else:
            self._valid = torch.cat([self._valid, torch.ones(B, T, dtype=torch.bool)], dim=1)
        out = np.zeros((B, T, S), dtype=np.float32)
        for b in range(B):
            out[b] = self._rows(self._seq[b], self._valid[b], T)
        self.current = torch.from_numpy(out).to(idx.device)
        return self.current

    def _rows(self, seq: torch.Tensor, valid: torch.Tensor, T: int) -> np.ndarray:
        S = seq.shape[0]
        real = valid.nonzero().flatten().numpy()
        full = np.eye(S, dtype=np.float64)  # padding queries attend to themselves only
        if len(real):
            full[np.ix_(real, real)] = self.matrix(seq[real].tolist())
        return full[S - T:]

    def metrics(self) -> dict:
        return {**self.cache.stats(), "attention_requests": self.provider.requests,
                "attention_fallbacks": self.fallbacks}


class ExternalAttention(nn.Module):
    """y = A @ v per head with A from ``source``, then the original output projection."""

    def __init__(self, inner: nn.Module, source: AttentionSource):
        super().__init__()
        for name, child in inner.named_children():  # same parameter names: checkpoints unchanged
            self.add_module(name, child)
        for name, param in inner.named_parameters(recurse=False):
            self.register_parameter(name, param)
        self.n_head, self.n_kv_head, self.head_dim = inner.n_head, inner.n_kv_head, inner.head_dim
        self.dropout = getattr(inner, "dropout", 0.0)
        object.__setattr__(self, "source", source)  # not a submodule: holds no weights

    def forward(self, x, rope=None, cache=None, attn_mask=None):
        B, T, C = x.shape
        v = self.wv(x).view(B, T, self.n_kv_head, self.head_dim).transpose(1, 2)
        if cache is not None:
            _, v = cache.update(v[..., :0], v)  # keys are never used: store an empty tensor
        A = self.source.current
        if A is None or A.shape[0] != B or A.shape[1] != T or A.shape[2] != v.shape[2]:
            raise RuntimeError("external attention: no matrix for this batch; call the model, not its blocks "
                               "(the GPT's forward pre-hook sets it)")
        A = A.to(v.dtype)
        if self.training and self.dropout > 0:
            A = F.dropout(A, self.dropout)
        y = A[:, None] @ v  # (B, H_kv, T, D): heads that share a value head share its output
        y = y.repeat_interleave(self.n_head // self.n_kv_head, dim=1)
        return self.wo(y.transpose(1, 2).reshape(B, T, C))


def install_external_attention(model: nn.Module, source: AttentionSource) -> None:
    """Put ExternalAttention around every block's attention and feed it from ``source``."""
    for block in model.blocks:
        if isinstance(block.attn, ExternalAttention):
            raise RuntimeError("external attention is already installed on this model")
        block.attn = ExternalAttention(block.attn, source)
        for name in FROZEN:
            child = getattr(block.attn, name, None)
            if child is not None:
                child.requires_grad_(False)
    signature = inspect.signature(model.forward)

    def hook(module, args, kwargs):
        bound = signature.bind(*args, **kwargs).arguments
        source.set_batch(bound["idx"], bound.get("caches"), bound.get("start_pos", 0), bound.get("attn_mask"))

    model._external_attention_hook = model.register_forward_pre_hook(hook, with_kwargs=True)


class LearnedAttention:
    """What ``wrap_for_external`` returns in the learned mode: nothing to do, nothing to report."""
    mode = "learned"

    def metrics(self) -> dict:
        return {}


class ExternalAttentionRun:
    mode = "external"

    def __init__(self, params: AttentionParams, source: AttentionSource):
        self.params, self.source = params, source

    def metrics(self) -> dict:
        return {"attention_mode": "external", "attention_provider": self.params.provider, **self.source.metrics()}


def wrap_for_external(model: nn.Module, params: AttentionParams, tokenizer=None, *, provider: Provider | None = None,
                      output_dir=None) -> LearnedAttention | ExternalAttentionRun:
    """The one call a stage or CLI makes after building/loading its model. Learned mode: a no-op.
    External mode: builds the provider and cache and installs external attention; the returned
    object's ``metrics()`` goes into the stage's metrics JSON. ``output_dir``: the directory the
    caller will write its model to (the local provider may not read its own output)."""
    if params.mode == "learned":
        return LearnedAttention()
    if params.provider == "local" and output_dir is not None:
        from pathlib import Path
        if Path(params.local_model).resolve() == Path(output_dir).resolve():
            raise UserError(f"attention.local_model is {params.local_model}, this stage's own output; copy a "
                            f"trained model elsewhere (e.g. models/attention_teacher) and point local_model at it")
    provider = provider or make_provider(params, tokenizer)
    source = AttentionSource(provider, ScoreCache(params.cache_dir), tokenizer, params.on_bad_reply,
                             getattr(tokenizer, "pad_id", None))
    install_external_attention(model, source)
    return ExternalAttentionRun(params, source)


__all__ = ["AttentionError", "AttentionSource", "ExternalAttention", "ExternalAttentionRun", "LearnedAttention",
           "install_external_attention", "normalise", "wrap_for_external"]
