"""Every benchmark script imports: a library move that breaks a bench shows up here, not weeks
later when someone runs it (bench_clean_real once imported a name the clean registry had
replaced)."""
from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench"
OPTIONAL = {"ray"}  # extras a bench may need; absent -> skipped, not failed


@pytest.mark.parametrize("name", sorted(p.stem for p in BENCH.glob("*.py") if p.stem != "__init__"))
def test_bench_module_imports(name):
    try:
        importlib.import_module(f"bench.{name}")
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] in OPTIONAL:
            pytest.skip(f"bench.{name} needs the optional {e.name}")
        raise
