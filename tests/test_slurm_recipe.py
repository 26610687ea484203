"""slurm/ray_data.sbatch, the README's Slurm recipe, run as written on this machine: `srun` and
`scontrol` are stubbed so its two "nodes" are local processes, and every other command (ray start
--head, ray start --address, the node wait, dvc repro, ray stop) is the script's own."""
from __future__ import annotations

import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pipeline_helpers import ROOT, env, make_repo
from tests.ray_cluster import SLOW_MACHINE, free_port

SRUN = """#!/bin/sh
# srun stub: drop srun's own options, run the command here
while [ $# -gt 0 ]; do
  case "$1" in -w|--nodelist|-N|-n) shift 2 ;; -*) shift ;; *) break ;; esac
done
exec "$@"
"""
SCONTROL = "#!/bin/sh\nprintf 'node1\\nnode2\\n'\n"


def _stubs(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("srun", SRUN), ("scontrol", SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    return bin_dir


def _job_env(tmp_path: Path, repo: Path) -> dict:
    venv = Path(sys.executable).parent
    e = {**env(), **SLOW_MACHINE, "SLURM_JOB_NODELIST": "node[1-2]", "SLURM_CPUS_PER_TASK": "1",
         "SLURM_SUBMIT_DIR": str(repo), "RAY_PORT": str(free_port()), "RAY": str(venv / "ray"),
         "DVC": f"{sys.executable} -m dvc", "PYTHON": sys.executable}
    e["PATH"] = f"{_stubs(tmp_path)}{os.pathsep}{e['PATH']}"
    e.pop("RAY_ADDRESS", None)
    return e


def _job(tmp_path: Path, engine: str) -> tuple[Path, dict]:
    repo = make_repo(tmp_path / "repo", {"engine": engine})
    shutil.copytree(ROOT / "slurm", repo / "slurm")
    return repo, _job_env(tmp_path, repo)


def test_the_recipe_refuses_a_local_engine(tmp_path):
    repo, e = _job(tmp_path, "local")
    proc = subprocess.run(["bash", "slurm/ray_data.sbatch", "pack"], cwd=repo, env=e,
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == ("error: params.yaml: set 'engine: ray' (top level) to run the data "
                                   "stages on this job's Ray cluster")


@pytest.mark.slow
def test_the_recipe_runs_the_data_stages_on_two_nodes_and_tears_down(tmp_path):
    pytest.importorskip("ray")
    repo, e = _job(tmp_path, "ray")
    proc = subprocess.run(["bash", "slurm/ray_data.sbatch", "pack"], cwd=repo, env=e,
                          capture_output=True, text=True, timeout=1200)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert "ray: 2 nodes up" in log
    assert "shards on ray" in log and "on ray" in log.split("clean:")[1]
    assert "bytes on ray" in log and "input sampled on ray" in log  # scrape and tokenizer too
    # torn down: nothing answers at the head's address any more
    head_ip = subprocess.run(["hostname", "--ip-address"], capture_output=True, text=True).stdout.split()[0]
    with pytest.raises(OSError):
        socket.create_connection((head_ip, int(e["RAY_PORT"])), timeout=5).close()
