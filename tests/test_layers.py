"""The import rules that keep lib/ layered, so a change reruns only the stages it can affect:
the tokenizer and data layers import no model, training or evaluation code; evaluation imports
nothing from training; and no lib module imports itself through others (a cycle)."""
import sys
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
# issue 21 item 7 removes this one (lib/clean/__init__.py re-exports from pipeline.py, which imports it)
KNOWN_CYCLES = [["lib/clean/__init__.py", "lib/clean/pipeline.py"]]


def modules_under(where: str) -> list[Path]:
    path = ROOT / where
    return [path] if path.suffix == ".py" else sorted(path.rglob("*.py"))


@pytest.mark.parametrize("where", sorted(FORBIDDEN))
def test_layer_imports_nothing_above_it(where):
    bad = sorted(f"{p.relative_to(ROOT)} imports {name}" for p in modules_under(where) for name in lib_imports(p)
                 if any(name == f or name.startswith(f + ".") for f in FORBIDDEN[where]))
    assert not bad, bad


def import_graph() -> dict[Path, set[Path]]:
    graph = {}
    for path in sorted((ROOT / "lib").rglob("*.py")):
        found = (module_file(name) for name in lib_imports(path))
        graph[path] = {f for f in found if f is not None and f != path}
    return graph


def cycles(graph: dict[Path, set[Path]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
                on.discard(comp[-1])
            if len(comp) > 1:
                out.append(sorted(p.relative_to(ROOT).as_posix() for p in comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10 * len(graph)))
    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle():
    assert [c for c in cycles(import_graph()) if c not in KNOWN_CYCLES] == []


def test_the_cycle_check_finds_a_cycle():
    a, b, c = (ROOT / "lib" / f"{n}.py" for n in "abc")
    assert cycles({a: {b}, b: {c}, c: {a}}) == [["lib/a.py", "lib/b.py", "lib/c.py"]]
    assert cycles({a: {b}, b: {c}, c: set()}) == []
