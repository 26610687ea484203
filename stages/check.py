"""Stage check: params.yaml's top level as a whole (unknown or missing sections, the seed).

DVC reruns a stage only when a section it declares changes, so a misspelt section that no stage
reads (``pretrian:``) would leave `dvc repro` "up to date" and silent. This stage depends on the
whole file, so any edit runs the check and such a mistake stops `dvc repro` with one line.
It writes nothing: there is no output to cache. `hpc-lm check` checks every key as well.
"""
from __future__ import annotations

import time

from lib.core.params import PARAMS_FILE, check_file
from lib.core.stage import run_stage, summary


def main() -> None:
    started = time.perf_counter()
    data = check_file(PARAMS_FILE)
    summary("check", f"{len(data)} top-level entries, none unknown or missing", PARAMS_FILE,
            time.perf_counter() - started)


if __name__ == "__main__":
    run_stage(main)
