"""The data stages on a two-node Ray cluster give the bytes the local engine gives: in process
(scrape's local files and datasets, clean, the tokenizer's corpus sample and pack, each with a
worker killed mid-stage and retried by Ray) and as DVC stages (scrape to pack, compared by the
output hashes in dvc.lock). Needs `uv sync --extra ray`."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

ray = pytest.importorskip("ray")

from lib.clean import CleanParams, clean  # noqa: E402
from lib.core.params import from_mapping  # noqa: E402
from lib.engine import Work  # noqa: E402
from lib.engine.local import LocalEngine  # noqa: E402
from lib.engine.ray_tasks import RayEngine  # noqa: E402
from lib.data.pack import PackParams, pack_split  # noqa: E402
from lib.scrape import ScrapeParams, scrape  # noqa: E402
from lib.tokenizer.sample import sample_texts  # noqa: E402
from lib.tokenizer.sample_corpus import sample_corpus  # noqa: E402
from tests import ray_cluster  # noqa: E402
from tests.fixtures_tiny import tiny_tokenizer  # noqa: E402
from tests.pipeline_helpers import ROOT, dvc, make_repo  # noqa: E402
from tests.real_docs import files, missing_message  # noqa: E402

pytestmark = pytest.mark.slow
STAGES = ("scrape", "clean", "corpus", "tokenizer", "pack")


def real_sources() -> list[dict]:
    """The sample plus third-party documents: MPICH man pages (HTML) and a TeX-typeset PDF."""
    mpich, tex = files("mpich")[:12], files("tex_manuals")[:1]
    if not mpich or not tex:
        pytest.skip(missing_message("mpich" if not mpich else "tex_manuals"))
    return [{"path": str(ROOT / "data/sample/docs")}] + [{"path": str(p)} for p in mpich + tex]


@pytest.fixture(scope="module")
def cluster():
    address = ray_cluster.start(nodes=2)
    yield address
    ray.shutdown()
    ray_cluster.stop()


class KillingRayEngine(RayEngine):
    def __init__(self, workers: int, marker: Path):
        super().__init__(workers)
        self.marker = str(marker)

    def map_ordered(self, work, items):
        killing = Work(ray_cluster.KillOnce(work.fn, self.marker), work.context, work.setup, work.batch)
        return super().map_ordered(killing, items)


def _raw(tmp_path: Path) -> Path:
    out = tmp_path / "raw"
    sp = from_mapping(ScrapeParams, {"sources": real_sources(), "cache_dir": "", "out_dir": str(out)}, "s")
    scrape(sp)
    return out


def test_clean_and_pack_on_two_nodes_with_a_killed_worker(cluster, tmp_path, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", cluster)
    raw = _raw(tmp_path)
    outs = {}
    for name, engine in (("local", LocalEngine(2)), ("ray", KillingRayEngine(2, tmp_path / "killed"))):
        p = CleanParams(workers=2, raw_dir=str(raw), out_dir=str(tmp_path / f"clean_{name}"))
        metrics = clean(p, engine)
        metrics.pop("seconds")
        outs[name] = (metrics, *[(tmp_path / f"clean_{name}" / f).read_bytes()
                                 for f in ("docs.jsonl", "rejects.jsonl")])
    assert (tmp_path / "killed").exists()  # a worker did die, and its task was retried
    assert outs["ray"] == outs["local"]
    assert outs["local"][0]["docs_kept"] >= 10
    nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    assert len(nodes) == 2

    tok = tiny_tokenizer()
    corpus = tmp_path / "clean_local" / "docs.jsonl"
    shards = {}
    for name, engine in (("local", LocalEngine(2)), ("ray", KillingRayEngine(2, tmp_path / "killed2"))):
        info = pack_split(corpus, tmp_path / f"shards_{name}", tok, PackParams(shard_tokens=4096),
                          chunk_bytes=1 << 14, engine=engine)
        shards[name] = (info, {f.name: f.read_bytes() for f in sorted((tmp_path / f"shards_{name}").iterdir())})
    assert (tmp_path / "killed2").exists()
    assert shards["ray"] == shards["local"]
    assert len(shards["local"][1]) >= 2


def _tree(path: Path) -> dict:
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_scrape_and_tokenizer_sample_on_two_nodes_with_a_killed_worker(cluster, tmp_path, monkeypatch):
    """Local files and dataset records stored by Ray workers, and the tokenizer's corpus sample
    drawn by them, as the local engine does, with a worker killed mid-stage."""
    monkeypatch.setenv("RAY_ADDRESS", cluster)
    dataset = tmp_path / "records.jsonl"
    pages = files("mpich")[:12]
    dataset.write_text("".join(json.dumps({"text": p.read_text(errors="replace"), "url": p.name}) + "\n"
                               for p in pages))
    out = tmp_path / "raw"  # one path for both runs: the manifest names it
    sp = from_mapping(ScrapeParams, {"sources": real_sources() + [{"dataset": str(dataset)}], "cache_dir": "",
                                     "out_dir": str(out)}, "s")
    stored = {}
    for name, engine in (("local", LocalEngine(2)), ("ray", KillingRayEngine(2, tmp_path / "killed"))):
        metrics, _ = scrape(sp, engine)
        metrics.pop("seconds")
        stored[name] = (metrics, _tree(out))
    assert (tmp_path / "killed").exists()
    assert stored["ray"] == stored["local"] and stored["local"][0]["ok"] >= 30

    samples = {}
    for name, engine in (("local", LocalEngine(2)), ("ray", KillingRayEngine(2, tmp_path / "killed2"))):
        samples[name] = sample_corpus(dataset, 200, 512, 1337, engine, chunk_bytes=1 << 14)
    assert (tmp_path / "killed2").exists()
    assert samples["ray"] == samples["local"] == sample_texts([p.read_text(errors="replace") for p in pages],
                                                              200, 512, 1337)


def _lock_outs(repo: Path) -> dict:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    # metrics files are outs too (cache: false); they hold timings, compared by _metrics instead
    return {s: [(o["path"], o["md5"]) for o in lock[s]["outs"] if not o["path"].startswith("metrics/")]
            for s in STAGES}


def _metrics(repo: Path) -> dict:
    out = {}
    for s in STAGES:
        m = json.loads((repo / f"metrics/{s}.json").read_text())
        out[s] = {k: v for k, v in m.items() if k not in ("seconds", "wall_seconds")}
    return out


def test_data_stages_local_vs_ray_same_dvc_lock(cluster, tmp_path, monkeypatch):
    real = [Path(s["path"]) for s in real_sources()[1:]]
    repos = {}
    for name in ("local", "ray"):
        repo = make_repo(tmp_path / name, {"engine": name})
        for path in real:  # into the drop-in folder that the default scrape.sources names
            shutil.copy2(path, repo / "data/sources" / path.name)
        if name == "ray":
            monkeypatch.setenv("RAY_ADDRESS", cluster)
        proc = dvc(repo, "repro", "pack")
        assert f"on {name}" in proc.stdout + proc.stderr
        repos[name] = repo
    assert _lock_outs(repos["ray"]) == _lock_outs(repos["local"])
    assert _metrics(repos["ray"]) == _metrics(repos["local"])
