"""The data engine without a cluster: the local engine's ordered, bounded map; the `engine:`
param's check; an unreachable RAY_ADDRESS as one line. Ray clusters: tests/test_engine_ray.py."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from lib.core.errors import UserError
from lib.core.params import check_file, load_engine
from lib.engine import Work
from lib.engine.local import LocalEngine
from tests.ray_cluster import free_port

ROOT = Path(__file__).resolve().parent.parent


def square_plus(x: int, state: int) -> tuple[int, int]:
    return x * x + state, os.getpid()


def _setup(context: int) -> int:
    return context * 10


@pytest.mark.parametrize("workers,batch", [(1, 1), (2, 1), (2, 3), (3, 7)])
def test_local_map_is_ordered_and_built_once_per_worker(workers, batch):
    out = list(LocalEngine(workers).map_ordered(Work(square_plus, 1, _setup, batch), range(100)))
    assert [v for v, _ in out] == [x * x + 10 for x in range(100)]
    pids = {pid for _, pid in out}
    assert (pids == {os.getpid()}) == (workers == 1)


def test_local_map_streams_with_bounded_work_in_flight():
    consumed = []

    def items():
        for i in range(10_000):
            consumed.append(i)
            yield i

    results = LocalEngine(2).map_ordered(Work(square_plus, 0, batch=4), items())
    assert next(results)[0] == 0
    # at most 2 * workers batches submitted, plus the one being read: never the whole input
    assert len(consumed) <= (2 * 2 + 1) * 4
    results.close()


def _params(tmp_path: Path, engine: str) -> Path:
    text = (ROOT / "params.yaml").read_text()
    path = tmp_path / "params.yaml"
    assert "\nengine: local\n" in text
    path.write_text(text.replace("\nengine: local\n", f"\nengine: {engine}\n"))
    return path


def test_engine_defaults_to_local_and_is_checked(tmp_path):
    without = tmp_path / "without.yaml"
    without.write_text("seed: 1\n")
    assert load_engine(without) == "local"
    assert load_engine(_params(tmp_path, "ray")) == "ray"
    with pytest.raises(UserError) as err:
        check_file(_params(tmp_path, "spark"))
    assert str(err.value) == f"{tmp_path / 'params.yaml'}: engine: expected one of 'local', 'ray', got 'spark' (str)"


def test_local_engine_needs_no_ray(tmp_path):
    path = _params(tmp_path, "local")
    code = (f"import sys; from lib.engine import engine_for; e = engine_for(2, {str(path)!r}); "
            "print(e.name, 'ray' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["local", "False"]


def test_unreachable_ray_address_is_one_line(tmp_path):
    pytest.importorskip("ray")
    (tmp_path / "params.yaml").write_text(_params(tmp_path, "ray").read_text())
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    env = {**os.environ, "RAY_ADDRESS": address, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-m", "stages.clean"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith(f"error: RAY_ADDRESS={address}: no Ray cluster answers there")
    assert "ray start --head" in lines[0] and "unset RAY_ADDRESS" in lines[0]
