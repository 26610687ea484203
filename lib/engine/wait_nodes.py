"""Wait until the Ray cluster at RAY_ADDRESS has N live nodes: ``python -m lib.engine.wait_nodes N``.

Used by slurm/ray_data.sbatch between starting the workers and running `dvc repro`, so that the
first stage does not start on a half-joined cluster; exits 1 with one line after the timeout.
"""
from __future__ import annotations

import sys
import time

from lib.core.errors import UserError
from lib.core.stage import run_stage


def wait_for_nodes(nodes: int, timeout_s: float = 300) -> int:
    import ray

    ray.init(logging_level="ERROR", log_to_driver=False)  # RAY_ADDRESS names the cluster
    try:
        deadline = time.monotonic() + timeout_s
        while (alive := sum(n["Alive"] for n in ray.nodes())) < nodes:
            if time.monotonic() > deadline:
                raise UserError(f"only {alive} of {nodes} Ray nodes joined in {timeout_s:.0f} s; "
                                f"see the worker steps' output in the job log")
            time.sleep(2)
        return alive
    finally:
        ray.shutdown()


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        raise UserError("usage: python -m lib.engine.wait_nodes NODES")
    print(f"ray: {wait_for_nodes(int(sys.argv[1]))} nodes up", file=sys.stderr)


if __name__ == "__main__":
    run_stage(main)
