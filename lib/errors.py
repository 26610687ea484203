"""The one exception type for mistakes a user can fix, and the stage entry point that reports it.

A user's mistake (bad params key, missing file, vocab too large) must stop the stage with one
clear line naming the key/file and what to do -- never a traceback. Bugs still raise normally.
"""
from __future__ import annotations

import sys
from typing import Callable


class UserError(Exception):
    """A problem in the user's inputs or configuration; the message says what to do."""


def run_stage(main: Callable[[], object]) -> None:
    """Run a stage's ``main`` and turn a UserError into one message and exit status 2."""
    try:
        main()
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130) from None
