"""dvc.yaml stays honest: every stage declares, as deps, its script and every lib module it imports
(transitively), so a code change reruns exactly the stages it can affect; every params section
a stage loads is declared under its params; and every file committed under metrics/ is one a
stage writes.

Modules that cannot change any output are exempt, so fixing a message or a progress bar does not
rerun the web scrape and retrain the model: ``EXEMPT`` below, and package ``__init__`` files that
hold only a docstring. Run ``python -m tests.test_dvc_yaml`` to print each stage's code deps."""
import ast
import subprocess
from pathlib import Path

import pytest
import yaml

from lib.core.params import SECTIONS

ROOT = Path(__file__).resolve().parent.parent
STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
# Progress bars, environment records, the exception type and the stage runner: logs and messages only.
EXEMPT = {"lib/core/progress.py", "lib/core/environment.py", "lib/core/errors.py", "lib/core/stage.py",
          "lib/train/log.py"}


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
    return {p for p in seen if p != script and not cannot_change_outputs(p)}


def cannot_change_outputs(path: Path) -> bool:
    if path.relative_to(ROOT).as_posix() in EXEMPT:
        return True
    if path.name != "__init__.py":
        return False
    body = ast.parse(path.read_text()).body
    return all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body)


def script_of(stage: str) -> Path:
    return ROOT / "stages" / f"{STAGES[stage]['cmd'].split('stages.')[1].split()[0]}.py"


def covered(path: Path, deps: list[str]) -> bool:
    rel = path.relative_to(ROOT).as_posix()
    return any(rel == d or rel.startswith(d.rstrip("/") + "/") for d in deps)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_declares_its_code(stage):
    script, deps = script_of(stage), STAGES[stage]["deps"]
    assert covered(script, deps), f"{stage}: script {script.name} is not a dep"
    missing = sorted(p.relative_to(ROOT).as_posix() for p in closure(script) if not covered(p, deps))
    assert not missing, f"{stage}: add to its deps in dvc.yaml: {missing}"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_declares_no_code_it_does_not_import(stage):
    """A dep on code the stage never runs (or that cannot change its outputs) reruns it for nothing."""
    script, deps = script_of(stage), STAGES[stage]["deps"]
    used = {p.relative_to(ROOT).as_posix() for p in closure(script)} | {script.relative_to(ROOT).as_posix()}
    code = [d for d in deps if d.startswith(("lib", "stages"))]
    stale = [d for d in code if not any(u == d or u.startswith(d.rstrip("/") + "/") for u in used)]
    assert not stale, f"{stage}: remove from its deps in dvc.yaml: {stale}"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_declares_the_params_it_loads(stage):
    spec = STAGES[stage]
    text = script_of(stage).read_text()
    # a dotted key (eval.suites) declares the part of a section that can change the stage's outputs
    declared = set(spec.get("params", [])) | {p.split(".")[0] for p in spec.get("params", [])}
    loaded = {s for s in SECTIONS if f'load_section("{s}"' in text}
    if "load_seed()" in text:
        loaded.add("seed")
    if "load_suite_params()" in text:  # lib/eval/params.py: the two keys decontamination reads
        loaded |= {"eval.suites", "eval.lambada_files"}
    if "load_attention_params()" in text or "attention_for_model(" in text:
        loaded.add("attention")
    assert loaded <= declared, f"{stage}: declare params {sorted(loaded - declared)}"


def test_every_committed_metrics_file_is_a_stages():
    """A file in git under metrics/ is one a dvc.yaml stage writes (a metric or a plot) or a stage's
    environment record or timings (lib/core/figures.py: git-tracked, not DVC outputs, since they
    differ on every run): nothing left behind by a renamed output or by a command."""
    tracked = subprocess.run(["git", "ls-files", "metrics"], cwd=ROOT, check=True, capture_output=True,
                             text=True).stdout.split()
    written = {next(iter(e)) if isinstance(e, dict) else e
               for s in STAGES.values() for kind in ("metrics", "plots") for e in s.get(kind, [])}
    records = {f"metrics/{kind}/{name}.json" for name in STAGES for kind in ("env", "timing")}
    stale = sorted(set(tracked) - written - records)
    assert not stale, f"no stage writes these: git rm {' '.join(stale)}"


if __name__ == "__main__":
    for name in STAGES:
        print(f"{name}:")
        for path in sorted(p.relative_to(ROOT).as_posix() for p in closure(script_of(name))):
            print(f"  - {path}")
