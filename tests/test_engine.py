"""The data engine without a cluster: the local engine's ordered, bounded map; the `engine:`
param's check; an unreachable RAY_ADDRESS as one line. Ray clusters: tests/test_engine_ray.py."""
from __future__ import annotations

import json
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


def _real_corpus(tmp_path: Path) -> tuple[Path, list[str]]:
    """A corpus split as the corpus stage writes it (one JSON object a line), from real pages."""
    from tests.real_docs import files, missing_message

    pages = files("slurm")
    if len(pages) < 20:
        pytest.skip(missing_message("slurm"))
    texts = [p.read_bytes().decode("utf-8", errors="replace") for p in pages]
    path = tmp_path / "train.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "text": t}) + "\n" for i, t in enumerate(texts)))
    return path, texts


@pytest.mark.parametrize("size", [0, 300])
def test_tokenizer_sample_is_the_same_for_any_engine_and_chunking(tmp_path, size):
    from lib.tokenizer.sample import sample_texts, training_sentences
    from lib.tokenizer.sample_corpus import sample_corpus

    path, texts = _real_corpus(tmp_path)
    expected = sample_texts(texts, size, 512, seed=3)
    every = len(list(training_sentences(texts, 512)))
    assert every > 1000 and len(expected) == (size or every)
    for workers, chunk_bytes in ((1, None), (2, 1 << 14), (2, 1 << 16), (3, 5000)):
        got = sample_corpus(path, size, 512, 3, LocalEngine(workers), chunk_bytes)
        assert got == expected, (workers, chunk_bytes)


def test_scrape_stores_the_same_bytes_for_any_worker_count(tmp_path, monkeypatch):
    """Local files (real HTML and PDF) and dataset records stored by 1 or 3 worker processes."""
    from lib.core.params import from_mapping
    from lib.scrape import ScrapeParams, scrape
    from tests.real_docs import files, missing_message

    pages, pdfs = files("mpich")[:20], files("tex_manuals")[:2]
    if not pages or not pdfs:
        pytest.skip(missing_message("mpich" if not pages else "tex_manuals"))
    dataset = tmp_path / "records.jsonl"
    dataset.write_text("".join(json.dumps({"text": p.read_text(errors="replace")[:3000], "url": f"u{i}"}) + "\n"
                               for i, p in enumerate(pages[:8])) + "not json\n")
    sources = [{"path": str(ROOT / "data/sample/docs")}, *[{"path": str(p)} for p in pages + pdfs],
               {"path": str(tmp_path / "missing.pdf")}, {"dataset": str(dataset)}]
    outs = []
    for workers in (1, 3):
        (tmp_path / f"w{workers}").mkdir()
        monkeypatch.chdir(tmp_path / f"w{workers}")  # the manifest names data/raw, as in the stage
        out = Path("data/raw")
        params = from_mapping(ScrapeParams, {"sources": sources, "cache_dir": "", "out_dir": str(out)}, "scrape")
        metrics, _ = scrape(params, LocalEngine(workers))
        metrics.pop("seconds")
        outs.append((metrics, {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
                               if p.is_file()}))
    assert outs[0][1] and outs[1][1].keys() == outs[0][1].keys()
    assert outs[1] == outs[0]
    # the sample's own bad files (an empty one, an unsupported type) and ours, recorded with reasons
    assert outs[0][0]["failed_by_reason"] == {"empty": 1, "invalid_json": 1, "not_found": 1, "unsupported_type": 1}
    assert outs[0][0]["docs_by_type"]["pdf"] >= 2 and outs[0][0]["ok"] >= 30
