"""dvc.yaml stays honest: every stage declares, as deps, its script and every lib module it imports
(transitively), so a code change reruns exactly the stages it can affect; and every params section
a stage loads is declared under its params."""
import ast
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def module_file(name: str) -> Path | None:
    path = ROOT / Path(*name.split("."))
    if path.with_suffix(".py").is_file():
        return path.with_suffix(".py")
    if (path / "__init__.py").is_file():
        return path / "__init__.py"
    return None


def lib_imports(path: Path) -> set[str]:
    """Dotted names of the lib modules ``path`` imports, at any depth in the file."""
    names = set()
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + ([base] if base else []))
            names.add(base)
            names |= {f"{base}.{a.name}" for a in node.names}
    return {n for n in names if n == "lib" or n.startswith("lib.")}


def closure(script: Path) -> set[Path]:
    seen, todo = set(), [script]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for name in lib_imports(path):
            found = module_file(name)
            if found is not None:
                todo.append(found)
                parts = name.split(".")
                for i in range(1, len(parts)):  # importing lib.a.b runs lib/a/__init__.py too
                    init = module_file(".".join(parts[:i]))
                    if init is not None:
                        todo.append(init)
    return {p for p in seen if p != script and p.name != "__init__.py" or p.parent.name != "lib"}


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_declares_its_code(stage):
    spec = STAGES[stage]
    script = ROOT / "stages" / f"{spec['cmd'].split('stages.')[1].split()[0]}.py"
    deps = spec["deps"]
    assert covered(script, deps), f"{stage}: script {script.name} is not a dep"
    missing = sorted(p.relative_to(ROOT).as_posix() for p in closure(script)
                     if p.relative_to(ROOT).as_posix() != "lib/__init__.py" and not covered(p, deps))
    assert not missing, f"{stage}: add to its deps in dvc.yaml: {missing}"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_declares_the_params_it_loads(stage):
    spec = STAGES[stage]
    script = ROOT / "stages" / f"{spec['cmd'].split('stages.')[1].split()[0]}.py"
    text = script.read_text()
    declared = set(spec.get("params", []))
    loaded = {s for s in ("scrape", "clean", "corpus", "tokenizer", "pack", "pretrain", "sft", "eval")
              if f'load_section("{s}"' in text}
    if "load_seed()" in text:
        loaded.add("seed")
    if "load_attention_params()" in text or "attention_for_model(" in text:
        loaded.add("attention")
    assert loaded <= declared, f"{stage}: declare params {sorted(loaded - declared)}"
