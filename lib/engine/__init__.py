"""Where data-stage work runs: ``local`` processes (the default) or a ``ray`` cluster.

Both give the same results in the same order, so the engine never changes an output: see
``lib.engine.base`` for the interface and ``engine_for`` to get one from params.yaml.
"""
from lib.engine.base import Engine, Work
from lib.engine.select import ENGINES, engine_for

__all__ = ["ENGINES", "Engine", "Work", "engine_for"]
