"""A local source that no dep of dvc.yaml's scrape stage covers would be read once and then never
again (DVC would say "up to date" however its files change): the scrape stage and `hpc-lm check`
stop on it with one line naming the source and what to do; the drop-in folder needs no edit."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import yaml

from lib.cli.check import main as check_main
from lib.core.errors import UserError
from lib.scrape import Source
from lib.scrape.tracked import check_tracked, local_root, stage_deps
from tests.pipeline_helpers import ROOT, env
from tests.real_docs import files, missing_message


def test_shipped_sources_sit_in_the_stage_deps():
    shipped = yaml.safe_load((ROOT / "params.yaml").read_text())["scrape"]["sources"]
    assert shipped == [{"path": "data/sample/docs"}, {"path": "data/sources"}]
    assert {"data/sample/docs", "data/sources"} <= set(stage_deps(ROOT / "dvc.yaml"))
    check_tracked([Source(**s) for s in shipped], ROOT / "dvc.yaml")


@pytest.mark.parametrize("source, root", [
    ({"path": "data/sources/papers/**/*.pdf"}, "data/sources/papers"),
    ({"dataset": "/data/corpus/*.jsonl"}, "/data/corpus"),
    ({"url": "file:///usr/share/doc/slurm-wlm/html/sbatch.html"}, "/usr/share/doc/slurm-wlm/html/sbatch.html"),
    ({"path": "*.md"}, "."),
    ({"crawl": "https://slurm.schedmd.com/"}, None),
])
def test_the_local_folder_a_source_reads(source, root):
    assert local_root(Source(**source)) == root


def test_inside_a_dep_passes_outside_stops_with_one_line(tmp_path):
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())
    spec["stages"]["scrape"]["deps"].append("/srv/papers")
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(spec))
    check_tracked([Source(path="data/sources/a/*.html"), Source(path="./data/sample/docs/text"),
                   Source(dataset="/srv/papers/2024/records.jsonl"), Source(url="https://example.org/")],
                  tmp_path / "dvc.yaml")
    for source in ({"path": "/usr/share/doc/slurm-wlm/html"}, {"path": "data/sources/../elsewhere"},
                   {"dataset": "data/*.jsonl"}, {"path": "/srv/papers-old"}):
        with pytest.raises(UserError) as err:
            check_tracked([Source(path="data/sample/docs"), Source(**source)], tmp_path / "dvc.yaml")
        kind, value = next(iter(source.items()))
        message = str(err.value)
        assert message.startswith(f"params.yaml: scrape.sources[1].{kind} {value!r} is not inside any dep")
        assert "add it" not in message and "to the scrape stage's deps in dvc.yaml" in message
        assert "data/sources/" in message and "\n" not in message
    check_tracked([Source(path="/srv/elsewhere")], tmp_path / "no-dvc-here" / "dvc.yaml")  # not a DVC project


def _stage_repo(tmp_path, sources):
    for rel in ("dvc.yaml", "params.yaml"):
        shutil.copy2(ROOT / rel, tmp_path / rel)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["scrape"]["sources"] = sources
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    return tmp_path


def test_the_scrape_stage_stops_before_reading_an_untracked_folder(tmp_path):
    pages = files("slurm")[:2]
    if len(pages) < 2:
        pytest.skip(missing_message("slurm"))
    repo = _stage_repo(tmp_path, [{"path": str(ROOT / "data/sample/docs")}, {"path": str(pages[0].parent)}])
    proc = subprocess.run([sys.executable, "-m", "stages.scrape"], cwd=repo, capture_output=True, text=True,
                          env={**env(), "PYTHONPATH": str(ROOT)}, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("error: params.yaml: scrape.sources[0].path ")  # the sample, given absolute
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert not (repo / "data/raw").exists()


def test_hpc_lm_check_names_the_untracked_source(tmp_path, monkeypatch):
    repo = _stage_repo(tmp_path, [{"path": "data/sample/docs"}, {"path": "/srv/papers"}])
    monkeypatch.chdir(repo)
    with pytest.raises(UserError, match=r"scrape.sources\[1\].path '/srv/papers' is not inside any dep"):
        check_main(["--params", "params.yaml"])
