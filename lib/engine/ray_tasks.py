"""The ``ray`` engine: Ray tasks, a bounded window of them in flight, results in input order.

Connects to the cluster named by RAY_ADDRESS (what ``ray start --head`` printed, e.g.
``10.0.0.1:6379``) or starts a local Ray of ``workers`` CPUs when it is unset. Tasks read raw
documents by the same relative paths as the local engine, so every node must see the repository
at the same path (a shared filesystem, as on a Slurm cluster); workers run in that directory.
A task whose worker dies (node lost, OOM kill) is retried by Ray; a task that raises is not:
errors in our code are deterministic, and the stage stops with the original message.
"""
from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import deque
from pathlib import Path
from typing import Any, Iterable, Iterator

from lib.core.errors import UserError
from lib.engine.base import Work, batches, run_batch

MAX_RETRIES = 3   # per task, on a lost worker or node


def _check_reachable(address: str) -> None:
    """Fail in seconds, in one line, rather than after Ray's long connection retries."""
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    fix = ("start the cluster (`ray start --head` prints the address) or unset RAY_ADDRESS "
           "to run on a local Ray")
    if not host or not port.isdigit():
        raise UserError(f"RAY_ADDRESS={address!r}: expected host:port (e.g. 10.0.0.1:6379); {fix}")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as err:
        raise UserError(f"RAY_ADDRESS={address}: no Ray cluster answers there ({err.strerror or err}); "
                        f"{fix}") from None


def connect(workers: int) -> None:
    import ray

    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS", "").strip()
    # workers import lib from this checkout and read data/raw relative to the stage's directory
    code = str(Path(__file__).resolve().parents[2])
    runtime_env = {"env_vars": {"PYTHONPATH": code, "HPC_LM_ROOT": os.getcwd()}}
    kwargs: dict[str, Any] = {"runtime_env": runtime_env, "logging_level": logging.WARNING,
                              "log_to_driver": False, "configure_logging": True}
    if address:
        _check_reachable(address)
        try:
            ray.init(address=address, **kwargs)
        except (ConnectionError, RuntimeError, TimeoutError) as err:
            raise UserError(f"RAY_ADDRESS={address}: could not join the Ray cluster ({err}); check "
                            f"that it runs the same Ray and Python versions, or unset RAY_ADDRESS") from None
    else:
        os.environ.pop("RAY_ADDRESS", None)  # an empty value would make ray.init look for one
        ray.init(num_cpus=workers, include_dashboard=False, **kwargs)


def _task(work: Work, token: str, batch: list[Any]) -> list[Any]:
    root = os.environ.get("HPC_LM_ROOT")
    if root and os.getcwd() != root:
        os.chdir(root)
    return run_batch(work, token, batch)


class RayEngine:
    name = "ray"

    def __init__(self, workers: int):
        self.workers = workers
        connect(workers)  # now: a wrong RAY_ADDRESS stops the stage before any work

    def map_ordered(self, work: Work, items: Iterable[Any]) -> Iterator[Any]:
        import ray

        remote = ray.remote(max_retries=MAX_RETRIES, retry_exceptions=False, num_cpus=1)(_task)
        window = 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))
        work_ref, token = ray.put(work), uuid.uuid4().hex  # stored once in the object store
        pending: deque = deque()
        try:
            for batch in batches(items, work.batch):
                pending.append(remote.remote(work_ref, token, batch))
                if len(pending) >= window:  # backpressure: wait for the oldest before reading on
                    yield from _get(pending.popleft())
            while pending:
                yield from _get(pending.popleft())
        finally:
            for ref in pending:
                ray.cancel(ref)


def _get(ref) -> list[Any]:
    import ray

    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as err:
        cause = getattr(err, "cause", None)
        if isinstance(cause, Exception):  # our own error (a UserError on a bad line): as raised
            raise cause from None
        raise
