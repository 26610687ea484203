"""The engine named by params.yaml's top-level ``engine:`` key, built for a stage's worker count."""
from __future__ import annotations

from lib.core.params import ENGINES, PARAMS_FILE, load_engine
from lib.engine.base import Engine
from lib.engine.local import LocalEngine

__all__ = ["ENGINES", "engine_for"]


def engine_for(workers: int, path: str = PARAMS_FILE) -> Engine:
    """``local``: a pool of ``workers`` processes. ``ray``: the cluster at RAY_ADDRESS, or a local
    Ray of ``workers`` CPUs when it is unset. Ray is imported only here, only when asked for."""
    if load_engine(path) == "ray":
        from lib.engine.ray_tasks import RayEngine

        return RayEngine(workers)
    return LocalEngine(workers)
