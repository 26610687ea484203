"""The entry point of every stage and command: a UserError becomes one line and exit status 2.

Also the one way a stage reports what it did: ``summary`` prints the closing line that a DVC or
sbatch log shows (what was produced, the headline figures, where, how long).
"""
from __future__ import annotations

import sys
from typing import Callable

from lib.core.errors import UserError


def run_stage(main: Callable[[], object]) -> None:
    """Run a stage's or command's ``main`` and turn a UserError into one message and exit status 2.

    An integer that ``main`` returns is the exit status. After a successful stage run, the
    environment it ran in is recorded in metrics/env/<stage>.json (the stage name is the script's
    module name, e.g. stages.pretrain -> pretrain); commands record nothing.
    """
    try:
        code = main()
        stage = _stage_name(main)
        if stage is not None:  # commands that are not DVC stages (lib.hf.*, lib.report) record nothing
            _record_environment(stage)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        raise SystemExit(130) from None
    if isinstance(code, int) and not isinstance(code, bool) and code:
        raise SystemExit(code)


def summary(stage: str, produced: str, where: str, seconds: float) -> str:
    """Print (to stderr, like every log line of ours) and return a stage's closing line:
    ``pack: 1,234,567 train / 98,765 val tokens in 3 shards -> data/shards (2.1 s)``."""
    line = f"{stage}: {produced} -> {where} ({seconds:.1f} s)"
    print(line, file=sys.stderr, flush=True)
    return line


def _stage_name(main: Callable) -> str | None:
    """'pretrain' for stages/pretrain.py, also when run as ``python -m stages.pretrain``;
    None for anything outside the stages package."""
    spec = getattr(sys.modules.get(main.__module__), "__spec__", None)
    module = spec.name if spec else main.__module__
    return module.split(".", 1)[1] if module.startswith("stages.") else None


def _record_environment(stage: str) -> None:
    from lib.core.environment import describe_environment
    from lib.core.io import write_json

    write_json(f"metrics/env/{stage}.json", describe_environment())
