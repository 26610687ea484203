"""The docs name things that exist: every repository path in docs/ARCHITECTURE.md (``lib/...``,
``stages/...``, ``tests/...``, ``bench/...``, with an optional ``:name`` defined in that file) and
in a module docstring under lib/, stages/, bench/ and tests/ resolves; every dotted
``lib.<package>.<module>`` name in a docstring is a module (or a name one defines); and every
module and top-level lib package introduces itself with a docstring. A file that moves without
its docs fails here."""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
ARCHITECTURE = ROOT / "docs" / "ARCHITECTURE.md"
CODE_DIRS = ("lib", "stages", "bench", "tests")
# a repository path, optionally followed by ":name" (a function or table in that file)
PATH = re.compile(r"(?<![\w./-])((?:lib|stages|tests|bench)/[\w./-]*\w/?)(?::(\w+))?")
DOTTED = re.compile(r"(?<![\w./-])(lib(?:\.\w+)+)")
# "`lib/x.py` (`NAME`)" or "(the one `NAME`)": the table names what the file holds
PAIRED = re.compile(r"`((?:lib|stages)/[\w/.-]+\.py)` \([^`)]*`(\w+)`")
TEMPLATE = re.compile(r"[<{*]")  # `stages/<name>.py`, `shard_*.bin`: patterns, not paths


def modules() -> list[Path]:
    return sorted(p for d in CODE_DIRS for p in (ROOT / d).rglob("*.py") if ".venv" not in p.parts)


def docstring(path: Path) -> str | None:
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))


def defines(path: Path, name: str) -> bool:
    """Whether module ``path`` binds ``name`` at its top level (def, class, assignment, import)."""
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and node.name == name:
            return True
        targets = node.targets if isinstance(node, ast.Assign) else [getattr(node, "target", None)]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if any((a.asname or a.name.split(".")[0]) == name for a in node.names):
                return True
    return False


def resolve_path(text: str, name: str | None) -> str | None:
    """None when ``text`` (with ``:name``) names something that exists, else why not."""
    path = ROOT / text.rstrip("/")
    candidates = [path, path.with_name(path.name + ".py")]
    found = next((c for c in candidates if c.exists()), None)
    if found is None:
        return f"{text}: no such file or folder"
    if name and found.is_file() and found.suffix == ".py" and not defines(found, name):
        return f"{text}:{name}: {found.name} defines no {name}"
    return None


def module_path(dotted: str) -> tuple[Path | None, list[str]]:
    """The longest prefix of ``dotted`` that is a module or package, and the names after it."""
    parts = dotted.split(".")
    for n in range(len(parts), 1, -1):
        base = ROOT.joinpath(*parts[:n])
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate, parts[n:]
    return None, parts


def resolve_dotted(dotted: str) -> str | None:
    path, rest = module_path(dotted)
    if path is None:
        return f"{dotted}: no such module"
    if rest and not defines(path, rest[0]) and not (path.parent / rest[0]).exists():
        return f"{dotted}: {path.relative_to(ROOT)} defines no {rest[0]}"
    return None


def problems(text: str, dotted: bool) -> list[str]:
    found = [resolve_path(m[1], m[2]) for m in PATH.finditer(text) if not TEMPLATE.search(m[0])]
    if dotted:
        found += [resolve_dotted(m[1].rstrip(".")) for m in DOTTED.finditer(text)]
    return sorted({p for p in found if p})


def test_architecture_paths_exist():
    text = ARCHITECTURE.read_text(encoding="utf-8")
    assert len(PATH.findall(text)) > 50  # the page is read at all: it names dozens of files
    paired = [resolve_path(m[1], m[2]) for m in PAIRED.finditer(text)]
    assert len(paired) >= 8
    assert not problems(text, dotted=False) + [p for p in paired if p]


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_module_docstring_is_there_and_names_real_things(path):
    doc = docstring(path)
    if path.name in ("__init__.py", "conftest.py") and path.parent.name in ("tests", "stages", "bench"):
        return  # an empty marker file
    assert doc and doc.strip(), f"{path.relative_to(ROOT)}: no module docstring"
    assert not problems(doc, dotted=True)


def dvc_outputs() -> set[str]:
    """Every path dvc.yaml's stages write: outs, metrics and plots."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    entries = [e for s in stages.values() for kind in ("outs", "metrics", "plots") for e in s.get(kind, [])]
    return {next(iter(e)) if isinstance(e, dict) else e for e in entries}


def test_the_flow_diagram_names_what_dvc_yaml_writes():
    """Each output path in the data-flow diagram lies under an output dvc.yaml declares (or holds
    one): a renamed or dropped output cannot stay drawn."""
    diagram = ARCHITECTURE.read_text(encoding="utf-8").split("```")[1]
    named = re.findall(r"(?<![\w./-])((?:data|models|metrics)/[^\s,]+)", diagram)
    outputs = dvc_outputs()
    assert len(named) >= 10
    bad = []
    for path in named:
        stem = re.split(r"[<{*]", path)[0].rstrip("/")
        if not any(stem == o or stem.startswith(o + "/") or o.startswith(stem + "/") for o in outputs):
            bad.append(path)
    assert not bad, f"drawn in docs/ARCHITECTURE.md but written by no dvc.yaml stage: {bad}"


def test_every_top_level_lib_package_has_a_docstring():
    packages = sorted(p for p in (ROOT / "lib").iterdir() if (p / "__init__.py").is_file())
    assert len(packages) >= 10
    missing = [p.name for p in packages if not (docstring(p / "__init__.py") or "").strip()]
    assert not missing, f"lib packages without a docstring in __init__.py: {missing}"


def test_a_moved_file_is_caught():
    """The checks can fail: a path, a name in a file and a dotted module that are not there."""
    assert problems("see `lib/shards.py` and `lib/train/loop.py:nothing_here`", dotted=False) == [
        "lib/shards.py: no such file or folder", "lib/train/loop.py:nothing_here: loop.py defines no nothing_here"]
    assert problems("``lib.train.windows`` and ``lib.data.windows``", dotted=True) == [
        "lib.train.windows: lib/train/__init__.py defines no windows"]
    assert problems("`lib/data/` `lib/train/loop.py:train` `stages/export`", dotted=False) == []


def readme_code_tree() -> str:
    """The annotated tree under the README's "Where the code lives" (its first code block)."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("```", text.index("### Where the code lives"))
    return text[start:text.index("```", start + 3)]


def test_the_readme_tree_names_every_lib_module():
    """The README promises one line per module: a new module without its line fails here."""
    tree = readme_code_tree()
    missing = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "lib").rglob("*.py")
                     if p.name not in ("__init__.py", "__main__.py") and not re.search(rf"\b{re.escape(p.name)}\b", tree))
    assert not missing, f"add a line to README.md's code tree for: {missing}"
