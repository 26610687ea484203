"""Building training batches ahead of the loop, so that ``batch(step)`` returns at once."""
from __future__ import annotations

import itertools
import queue
import threading
from typing import Iterator

import torch

from lib.data.batch import Batch
from lib.data.windows import TrainWindows


class _IndexedBatches(torch.utils.data.Dataset):
    def __init__(self, windows: TrainWindows):
        self.windows = windows

    def __getitem__(self, index: int) -> Batch:
        return Batch.from_rows(self.windows.rows(index))  # pinned by the DataLoader, not in workers


class _CountFrom:
    def __init__(self, start: int):
        self.start = start

    def __iter__(self) -> Iterator[int]:
        return itertools.count(self.start)


class Prefetcher:
    """A drop-in for ``windows.batch`` that builds the next batches ahead, so ``batch(step)`` for
    consecutive steps returns at once: in a background thread (``num_workers=0``, the cheap
    hand-over) or in DataLoader worker processes (``num_workers > 0``, for batches costly enough
    to outweigh passing tensors between processes). Pinning happens off the training thread.

    Batches are identical to ``windows.batch(step)`` in every mode; asking for a step out of
    sequence (a resume) restarts the stream at that step.
    """

    def __init__(self, windows: TrainWindows, num_workers: int = 0, prefetch_factor: int = 4,
                 pin_memory: bool | None = None):
        self.windows, self.num_workers, self.prefetch_factor = windows, num_workers, prefetch_factor
        self.pin_memory = windows.pin_memory if pin_memory is None else pin_memory and torch.cuda.is_available()
        self._it: Iterator[Batch] | None = None
        self._stop: threading.Event | None = None
        self._next = -1

    def __call__(self, index: int) -> Batch:
        if self._it is None or index != self._next:
            self.close()
            self._it = self._processes(index) if self.num_workers > 0 else self._thread(index)
        self._next = index + 1
        return next(self._it)

    def _processes(self, start: int) -> Iterator[Batch]:
        loader = torch.utils.data.DataLoader(
            _IndexedBatches(self.windows), batch_size=None, sampler=_CountFrom(start),
            num_workers=self.num_workers, prefetch_factor=self.prefetch_factor, pin_memory=self.pin_memory)
        return iter(loader)

    def _thread(self, start: int) -> Iterator[Batch]:
        q: queue.Queue = queue.Queue(maxsize=self.prefetch_factor)
        stop = self._stop = threading.Event()
        windows, pin = self.windows, self.pin_memory

        def produce() -> None:
            index = start
            while not stop.is_set():
                try:
                    item = Batch.from_rows(windows.rows(index), pin)
                except BaseException as err:  # handed to the training thread, raised there
                    item = err
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                index += 1

        threading.Thread(target=produce, daemon=True, name="prefetch").start()

        def consume() -> Iterator[Batch]:
            while True:
                item = q.get()
                if isinstance(item, BaseException):
                    raise item
                yield item
        return consume()

    def close(self) -> None:
        it, self._it = self._it, None
        if self._stop is not None:
            self._stop.set()
            self._stop = None
        if it is not None and hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()

    def __del__(self):
        self.close()
