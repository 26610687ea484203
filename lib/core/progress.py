"""The one progress bar: tqdm on stderr, shown only when stderr is a terminal, so DVC logs, CI
output and captured test output stay readable."""
from __future__ import annotations

import sys

from tqdm import tqdm


def progress(iterable=None, *, enabled: bool = True, **kwargs) -> tqdm:
    kwargs.setdefault("file", sys.stderr)
    kwargs.setdefault("mininterval", 0.5)
    # disable=None: tqdm switches itself off when the stream is not a TTY
    return tqdm(iterable, disable=None if enabled else True, **kwargs)
