"""The import rules that keep lib/ layered, so a change reruns only the stages it can affect:
the tokenizer and data layers import no model, training or evaluation code; evaluation imports
nothing from training. (No cycles at all: tests/test_import_cycles.py.)"""
from pathlib import Path

import pytest

from tests.test_dvc_yaml import ROOT, lib_imports, module_file

# package -> packages it must not import (directly; what they import is checked on its own line)
FORBIDDEN = {
    "lib/tokenizer": ("lib.model", "lib.train", "lib.eval", "lib.infer", "lib.data", "lib.hf"),
    "lib/data": ("lib.model", "lib.train", "lib.eval", "lib.infer", "lib.hf"),
    "lib/eval": ("lib.train",),
    "lib/hf/base.py": ("lib.model", "lib.train", "lib.infer"),
}
def modules_under(where: str) -> list[Path]:
    path = ROOT / where
    return [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))


@pytest.mark.parametrize("where", sorted(FORBIDDEN))
def test_layer_imports_nothing_above_it(where):
    bad = sorted(f"{p.relative_to(ROOT)} imports {name}" for p in modules_under(where) for name in lib_imports(p)
                 if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[where]))
    assert not bad, bad
