"""Bringing your own documents takes no edit: copy them into data/sources/, the drop-in folder that
both the default `scrape.sources` and the scrape stage's deps name. DVC then sees the change
(scrape, clean and corpus rerun and keep one more document), sees nothing when nothing changed
(`dvc status` up to date, a second repro runs nothing), and restores the earlier outputs from its
run cache when the file goes again. Real document: a page of Slurm's HTML manual (slurm-wlm-doc)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.pipeline_helpers import ROOT, dvc, make_repo, repro
from tests.real_docs import DOC, missing_message

pytestmark = pytest.mark.slow

PAGE = DOC / "slurm-wlm/html/job_array.html"  # Slurm's job array guide: on topic, kept by clean


def _figure(repo: Path, stage: str) -> int:
    return json.loads((repo / f"metrics/{stage}.json").read_text())["docs"]


def _up_to_date(repo: Path) -> bool:
    return "Data and pipelines are up to date" in dvc(repo, "status", "--with-deps", "corpus").stdout


def test_the_drop_in_folder_is_in_git_without_its_contents():
    assert (ROOT / "data/sources/.gitkeep").is_file()
    ignored = subprocess.run(["git", "check-ignore", "-q", "data/sources/paper.pdf"], cwd=ROOT)
    kept = subprocess.run(["git", "check-ignore", "-q", "data/sources/.gitkeep"], cwd=ROOT)
    assert ignored.returncode == 0 and kept.returncode == 1


def test_documents_copied_into_data_sources_rerun_what_follows(tmp_path):
    if not PAGE.is_file():
        pytest.skip(missing_message("slurm"))
    repo = make_repo(tmp_path / "repo")
    scrape = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]["scrape"]
    assert "always_changed" not in scrape and {"data/sample/docs", "data/sources"} <= set(scrape["deps"])
    assert repro(repo, "corpus") == ["scrape", "clean", "corpus"]
    scraped, kept = _figure(repo, "scrape"), _figure(repo, "clean")
    manifest = (repo / "data/raw/manifest.jsonl").read_text()
    assert ".gitkeep" not in manifest  # the placeholder is no document, nor a failure
    lock = (repo / "dvc.lock").read_bytes()

    # nothing changed: DVC says so, and a second repro runs nothing
    assert _up_to_date(repo)
    assert repro(repo, "corpus") == [] and (repo / "dvc.lock").read_bytes() == lock

    # a real page copied in, no edit anywhere: scrape and what follows rerun and keep it
    shutil.copy2(PAGE, repo / "data/sources" / PAGE.name)
    assert not _up_to_date(repo)
    assert repro(repo, "corpus") == ["scrape", "clean", "corpus"]
    assert (_figure(repo, "scrape"), _figure(repo, "clean")) == (scraped + 1, kept + 1)
    records = [json.loads(line) for line in (repo / "data/raw/manifest.jsonl").read_text().splitlines()]
    assert [r["status"] for r in records if r["source"] == f"data/sources/{PAGE.name}"] == ["ok"]
    assert _up_to_date(repo)

    # removed again: the first run's outputs, restored from DVC's run cache rather than rerun
    (repo / "data/sources" / PAGE.name).unlink()
    assert repro(repo, "corpus") == []
    assert (repo / "dvc.lock").read_bytes() == lock and _up_to_date(repo)
    assert _figure(repo, "clean") == kept
