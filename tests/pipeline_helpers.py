"""Helpers for end-to-end tests: a throwaway copy of the repository as its own git + DVC repo,
with a tiny configuration so the whole pipeline runs in well under a minute on CPU."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent

# Overrides applied on top of the shipped params.yaml: same stages, tiny sizes.
TINY = {
    "tokenizer": {"vocab_size": 512},
    "pretrain": {
        "model": {"n_layer": 1, "n_head": 2, "n_kv_head": 2, "d_model": 32, "d_ff": 64, "max_seq_len": 64},
        "seq_len": 64, "batch_size": 4, "steps": 12, "warmup_steps": 2, "eval_every": 6, "eval_batches": 2,
        "checkpoint_every": 6,
    },
    "sft": {"epochs": 1, "batch_size": 16, "max_len": 64, "eval_every": 5, "warmup_steps": 1},
    "eval": {"val_batches": 2, "max_new_tokens": 8},
}


def merge(base: dict, override: dict) -> dict:
    out = dict(base)
    for key, value in override.items():
        out[key] = merge(base.get(key, {}), value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
    return out


def project_files() -> list[str]:
    """Tracked files plus untracked ones git does not ignore: what a fresh clone would have."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
                         cwd=ROOT, check=True, capture_output=True).stdout.decode()
    keep = ("stages/", "lib/", "data/sample/", "data/sources/", "data/eval/", "models/base/", "dvc.yaml", "params.yaml", ".gitignore", ".dvcignore")
    return sorted(f for f in out.split("\0") if f and f.startswith(keep) and (ROOT / f).is_file())


def env() -> dict:
    e = dict(os.environ)
    e["PATH"] = str(Path(sys.executable).parent) + os.pathsep + e.get("PATH", "")  # `python` = this venv
    e["PYTHONHASHSEED"] = "0"
    e.pop("DVC_ROOT", None)
    # as for a user: stages write __pycache__ into lib/, which .dvcignore must keep out of dep hashes
    e.pop("PYTHONDONTWRITEBYTECODE", None)
    return e


def run(cmd: list[str], cwd: Path, check: bool = True, timeout: int = 600) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, cwd=cwd, env=env(), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def dvc(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "dvc", *args], cwd, check=check)


def make_repo(dest: Path, overrides: dict | None = None) -> Path:
    """A fresh git + DVC repository holding the project and a tiny params.yaml, committed."""
    dest.mkdir(parents=True)
    for rel in project_files():
        (dest / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, dest / rel)
    params = merge(yaml.safe_load((ROOT / "params.yaml").read_text()), merge(TINY, overrides or {}))
    write_params(dest, params)
    run(["git", "init", "-q", "-b", "main"], dest)
    run(["git", "config", "user.email", "test@example.com"], dest)
    run(["git", "config", "user.name", "test"], dest)
    dvc(dest, "init", "-q")
    shutil.copy2(ROOT / ".dvcignore", dest / ".dvcignore")  # ours, not dvc init's template
    dvc(dest, "config", "core.analytics", "false")
    run(["git", "add", "-A"], dest)
    run(["git", "commit", "-qm", "initial"], dest)
    return dest


def read_params(repo: Path) -> dict:
    return yaml.safe_load((repo / "params.yaml").read_text())


def write_params(repo: Path, params: dict) -> None:
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def set_param(repo: Path, dotted: str, value) -> None:
    params = read_params(repo)
    node = params
    *parents, last = dotted.split(".")
    for key in parents:
        node = node[key]
    node[last] = value
    write_params(repo, params)


def repro(repo: Path, *args: str) -> list[str]:
    """Run `dvc repro`; returns the names of the stages that actually ran, in order, leaving out
    the params `check` stage (it runs on every params.yaml edit and writes nothing)."""
    proc = dvc(repo, "repro", *args)
    ran = re.findall(r"Running stage '([\w-]+)'", proc.stdout + proc.stderr)
    return [stage for stage in ran if stage != "check"]
