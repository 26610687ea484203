"""Continuous batching: one scheduler thread runs every request's generation in one batch.

Each step the thread admits waiting requests (their prompts prefilled together, then joined to
the running rows: lib/serve/rows.py), samples one token per row, hands each token to its
request, drops the rows that finished -- a stop id, their max_tokens, the context's end, or a
client that went away -- and advances the rest with one forward pass. A request never waits for
another to finish; a finished or abandoned one frees its row at the next step.

Sampling is lib/infer/sampling.py's, per row: greedy rows equal ``lib.infer.generate.generate``
alone, and a sampled row draws from its own generator seeded with the request's seed, as
``generate`` does, so its tokens do not depend on who else is in the batch.
"""
from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from dataclasses import dataclass, field
from typing import Callable

import torch

from lib.infer.sampling import SamplingParams, sample
from lib.model.gpt import GPT, padded_causal_mask
from lib.serve.rows import LayerCache, join_valid

log = logging.getLogger("hpc_lm.serve")


@dataclass(eq=False)
class Job:
    """One request's generation. ``emit(token_id)`` gets every new token and ``emit(None)``
    once at the end (with ``finish`` set); both are called from the scheduler thread."""
    prompt: list[int]
    max_tokens: int
    stop_ids: frozenset[int]
    sampling: SamplingParams
    seed: int
    emit: Callable[[int | None], None]
    cancelled: threading.Event = field(default_factory=threading.Event)
    finish: str = ""            # "stop" (a stop id), "length" (max_tokens or the context), "cancelled"
    produced: int = 0

    def cancel(self) -> None:
        self.cancelled.set()


@dataclass(eq=False)
class _Row:
    job: Job
    budget: int                 # new tokens this row may produce
    pos: int                    # position of the last token in the cache
    generator: torch.Generator


class Engine:
    """Owns the model; ``submit`` queues a job, the scheduler thread runs it."""

    def __init__(self, model: GPT, max_batch: int = 32):
        self.model = model.eval()
        self.device = next(model.parameters()).device
        self.max_batch = max_batch
        self.pending: queue.Queue[Job | None] = queue.Queue()
        self.rows: list[_Row] = []
        self.caches: list[LayerCache] = []
        self.valid = torch.zeros(0, 0, dtype=torch.bool)
        self.logits: torch.Tensor | None = None   # (B, V) each row's next-token logits
        self.steps = 0                             # forward passes, for tests and stats
        self.peak_batch = 0
        self._thread = threading.Thread(target=self._loop, name="hpc-lm-engine", daemon=True)
        self._thread.start()

    @property
    def context(self) -> int:
        return self.model.cfg.max_seq_len

    def submit(self, job: Job) -> None:
        if not job.prompt or len(job.prompt) > self.context:
            raise ValueError(f"a prompt needs 1..{self.context} tokens, got {len(job.prompt)}")
        self.pending.put(job)

    def close(self) -> None:
        self.pending.put(None)
        self._thread.join(timeout=10)

    # ---- the scheduler thread ------------------------------------------------------------

    def _loop(self) -> None:
        with torch.inference_mode():
            while True:
                try:
                    if not self._admit(block=not self.rows):
                        return
                    if self.rows:
                        self._step()
                except Exception:  # a bug must not leave clients hanging: end every job, keep serving
                    log.exception("engine step failed; ending the batch")
                    for row in self.rows:
                        self._finish(row.job, "error")
                    self._reset()

    def _admit(self, block: bool) -> bool:
        """Move waiting jobs into the batch; False when the engine is closing."""
        jobs: list[Job] = []
        while len(self.rows) + len(jobs) < self.max_batch:
            try:
                job = self.pending.get(block=block and not jobs)
            except queue.Empty:
                break
            if job is None:
                return False
            if job.cancelled.is_set():
                self._finish(job, "cancelled")
                continue
            jobs.append(job)
        if jobs:
            try:
                self._prefill(jobs)
            except Exception:  # not rows yet: end them here, or their clients would wait forever
                for job in jobs:
                    self._finish(job, "error")
                raise
        return True

    def _prefill(self, jobs: list[Job]) -> None:
        """Run the new prompts together (left-padded) and join them to the running rows."""
        lens = torch.tensor([len(j.prompt) for j in jobs])
        T = int(lens.max())
        pad = T - lens
        x = torch.zeros(len(jobs), T, dtype=torch.long)
        for i, j in enumerate(jobs):
            x[i, int(pad[i]):] = torch.tensor(j.prompt, dtype=torch.long)
        cols = torch.arange(T)
        valid = cols[None, :] >= pad[:, None]
        positions = (cols[None, :] - pad[:, None]).clamp(min=0)
        caches = [LayerCache() for _ in self.model.blocks]
        logits, _ = self.model(x.to(self.device), caches=caches, positions=positions.to(self.device),
                               attn_mask=padded_causal_mask(valid).to(self.device))
        new_rows = [_Row(j, min(j.max_tokens, self.context + 1 - len(j.prompt)), len(j.prompt) - 1,
                         torch.Generator(device="cpu").manual_seed(int(j.seed))) for j in jobs]
        last = logits[:, -1].float().cpu()
        if not self.rows:
            self.caches, self.valid, self.logits = caches, valid, last
        else:
            for mine, theirs in zip(self.caches, caches):
                mine.join(theirs)
            self.valid = join_valid(self.valid, valid)
            self.logits = torch.cat([self.logits, last])
        self.rows += new_rows
        self.peak_batch = max(self.peak_batch, len(self.rows))

    def _step(self) -> None:
        """Sample a token for every row, retire finished rows, advance the others one token."""
        next_ids = self._sample()
        keep = []
        for i, (row, token) in enumerate(zip(self.rows, next_ids.tolist())):
            job = row.job
            if job.cancelled.is_set():
                self._finish(job, "cancelled")
            elif token in job.stop_ids:
                self._finish(job, "stop")
            else:
                job.produced += 1
                job.emit(token)
                if job.produced >= row.budget:
                    self._finish(job, "length")
                else:
                    keep.append(i)
        if len(keep) < len(self.rows):
            self._retire(keep)
            next_ids = next_ids[keep]
        if not self.rows:
            return
        for row in self.rows:
            row.pos += 1
        self.valid = torch.cat([self.valid, torch.ones(len(self.rows), 1, dtype=torch.bool)], dim=1)
        positions = torch.tensor([[r.pos] for r in self.rows])
        logits, _ = self.model(next_ids.view(-1, 1).to(self.device), caches=self.caches,
                               start_pos=int(positions.max()), positions=positions.to(self.device),
                               attn_mask=self.valid[:, None, None, :].to(self.device))
        self.logits = logits[:, -1].float().cpu()
        self.steps += 1

    def _sample(self) -> torch.Tensor:
        """One token per row; rows that share sampling settings are sampled together."""
        out = torch.empty(len(self.rows), dtype=torch.long)
        groups: dict[tuple, list[int]] = {}
        for i, row in enumerate(self.rows):
            groups.setdefault(dataclasses.astuple(row.job.sampling), []).append(i)
        for idx in groups.values():
            gens = [self.rows[i].generator for i in idx]
            out[idx] = sample(self.logits[idx], self.rows[idx[0]].job.sampling, gens)
        return out

    def _retire(self, keep: list[int]) -> None:
        rows = torch.tensor(keep, dtype=torch.long)
        self.rows = [self.rows[i] for i in keep]
        if not keep:
            self._reset()
            return
        valid = self.valid[rows]
        first = int(valid.any(0).long().argmax())  # columns left of every live row's first token go
        self.valid = valid[:, first:]
        self.logits = self.logits[rows]
        dev_rows = rows.to(self.device)
        for cache in self.caches:
            cache.keep(dev_rows, first)

    def _reset(self) -> None:
        self.rows, self.caches, self.logits = [], [], None
        self.valid = torch.zeros(0, 0, dtype=torch.bool)

    @staticmethod
    def _finish(job: Job, reason: str) -> None:
        job.finish = reason
        job.emit(None)
