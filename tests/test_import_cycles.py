"""No import cycles inside lib/: a module never imports, directly or through others, a module that
imports it (``lib/clean/__init__.py`` and ``lib/clean/pipeline.py`` once did). Imports are read
from the source, at any depth of the file, including those only for type checkers."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def modules() -> dict[str, Path]:
    found = {}
    for path in (ROOT / "lib").rglob("*.py"):
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path, known: dict[str, Path]) -> set[str]:
    """The lib modules ``path`` names. ``from pkg import sub`` names the package as well as the
    submodule: the name is looked up on the package, which must have run its ``__init__``."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {n for n in names if n in known}


def cycle_from(start: str, graph: dict[str, set[str]]) -> list[str] | None:
    """A path start -> ... -> start, if there is one (depth-first)."""
    stack, seen = [(start, [start])], set()
    while stack:
        node, path = stack.pop()
        for nxt in sorted(graph[node]):
            if nxt == start:
                return path + [start]
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, path + [nxt]))
    return None


def test_lib_has_no_import_cycles():
    known = modules()
    graph = {name: imports(path, known) - {name} for name, path in known.items()}
    assert sum(map(len, graph.values())) > 100  # the reader sees the imports
    cycles = [c for name in sorted(graph) if (c := cycle_from(name, graph))]
    assert not cycles, " ; ".join(" -> ".join(c) for c in cycles[:5])


def test_the_reader_finds_a_cycle(tmp_path: Path):
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycle_from("a", graph) == ["a", "b", "c", "a"] and cycle_from("d", graph) is None
