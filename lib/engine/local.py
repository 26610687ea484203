"""The ``local`` engine: a process pool on this machine (the default; no extra dependency)."""
from __future__ import annotations

import itertools
import multiprocessing
import threading
import uuid
from collections import deque
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, Iterable, Iterator

from lib.engine.base import Work, batches, install, run_batch, run_installed


class LocalEngine:
    name = "local"

    def __init__(self, workers: int):
        self.workers = workers

    def map_ordered(self, work: Work, items: Iterable[Any]) -> Iterator[Any]:
        token = uuid.uuid4().hex
        chunks = batches(items, work.batch)
        head = list(itertools.islice(chunks, 2))
        chunks = itertools.chain(head, chunks)
        if self.workers == 1 or len(head) < 2:  # a pool is not worth starting for a single batch
            for batch in chunks:
                yield from run_batch(work, token, batch)
            return
        # fork starts workers in milliseconds with everything imported (PyMuPDF alone takes
        # ~1.5 s); it is only safe while this process runs no other thread, else spawn
        single = threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods()
        ctx = multiprocessing.get_context("fork" if single else "spawn")
        with ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=install,
                                 initargs=(work, token)) as pool:
            pending: deque[Future] = deque()
            try:
                for batch in chunks:
                    pending.append(pool.submit(run_installed, token, batch))
                    if len(pending) >= 2 * self.workers:
                        yield from pending.popleft().result()
                while pending:
                    yield from pending.popleft().result()
            finally:
                for fut in pending:
                    fut.cancel()

