"""A two-node Ray cluster on this machine, started with the same `ray start` commands a Slurm job
runs on its nodes (README 'Data stages on Ray'): a head, then a worker joining its address.
One CPU per node: the test machine is small and shared."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

RAY = str(Path(sys.executable).parent / "ray")
# A loaded two-core machine starts Ray's agents slowly: wait longer than Ray's 30 s default
SLOW_MACHINE = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_agent_register_timeout_ms": "300000",
                "RAY_raylet_start_wait_time_s": "60"}


TEMP = f"/tmp/ray_hpclm_{os.getpid()}"  # this test run's cluster files; named in every daemon's command line


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ray(*args: str, timeout: int = 150) -> None:
    env = {**os.environ, **SLOW_MACHINE}
    env.pop("RAY_ADDRESS", None)
    proc = subprocess.run([RAY, *args], env=env, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"ray {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")


def _agent_ports() -> list[str]:
    """Fixed agent ports, so two nodes on one machine never race for one."""
    names = ("metrics-export-port", "dashboard-agent-grpc-port", "dashboard-agent-listen-port",
             "runtime-env-agent-port")
    return [f"--{name}={free_port()}" for name in names]


def start(nodes: int = 2, attempts: int = 5) -> str:
    """Start a head and ``nodes - 1`` workers; returns the address for RAY_ADDRESS. Retried: on a
    loaded machine a node can miss one of Ray's start-up waits and die; we then start over."""
    for attempt in range(attempts):
        try:
            return _start(nodes)
        except (RuntimeError, subprocess.TimeoutExpired):
            stop()
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _start(nodes: int) -> str:
    address = f"127.0.0.1:{free_port()}"
    _ray("start", "--head", f"--port={address.rsplit(':', 1)[1]}", "--node-ip-address=127.0.0.1",
         "--num-cpus=1", "--include-dashboard=false", "--disable-usage-stats", f"--temp-dir={TEMP}",
         *_agent_ports())
    for _ in range(nodes - 1):
        _ray("start", f"--address={address}", "--node-ip-address=127.0.0.1", "--num-cpus=1",
             "--disable-usage-stats", *_agent_ports())
    wait_for_nodes(address, nodes)
    return address


def wait_for_nodes(address: str, nodes: int, timeout: float = 120) -> None:
    import ray

    ray.init(address=address, logging_level="ERROR", log_to_driver=False)
    try:
        deadline = time.monotonic() + timeout
        while sum(n["Alive"] for n in ray.nodes()) < nodes:
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {sum(n['Alive'] for n in ray.nodes())} of {nodes} Ray nodes came up")
            time.sleep(1)
    finally:
        ray.shutdown()


def stop() -> None:
    """`ray stop` ends the Ray processes that `ray start` started for this user on this machine."""
    _ray("stop", "--force", timeout=120)


class KillOnce:
    """Wraps a Work's fn: the first call anywhere kills its own worker process (a lost node).
    Here, not in a test module, so that Ray workers can import it as tests.ray_cluster."""

    def __init__(self, fn, marker: str):
        self.fn, self.marker = fn, marker

    def __call__(self, item, state):
        try:
            fd = os.open(self.marker, os.O_CREAT | os.O_EXCL)
        except FileExistsError:
            return self.fn(item, state)
        os.close(fd)
        os._exit(1)
