"""Bringing your own documents is one edit: a folder named only in params.yaml `scrape.sources`
(outside the repository, as /data/papers would be) is followed by DVC. scrape is always_changed:
it re-reads its sources on every `dvc repro` and writes the same bytes when nothing changed, so
DVC skips clean and what follows; a file added to the folder reruns them. Real documents: Slurm's
HTML manual pages (Debian's slurm-wlm-doc)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.pipeline_helpers import dvc, make_repo, pending, repro
from tests.real_docs import files, missing_message

pytestmark = pytest.mark.slow


def _status(repo: Path) -> dict:
    """`dvc status` of scrape .. corpus, the stages this test runs."""
    return json.loads(dvc(repo, "status", "--json", "--with-deps", "corpus").stdout or "{}")


def test_a_folder_named_only_in_params_is_followed_by_dvc(tmp_path):
    pages = files("slurm")[:4]
    if len(pages) < 4:
        pytest.skip(missing_message("slurm"))
    mine = tmp_path / "papers"
    mine.mkdir()
    for page in pages[:3]:
        shutil.copy2(page, mine / page.name)
    repo = make_repo(tmp_path / "repo", {"scrape": {"sources": [{"path": "data/sample/docs"},
                                                                {"path": str(mine)}]}})
    spec = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]["scrape"]
    assert not [d for d in spec["deps"] if d.startswith("data/")]  # no source listed twice
    assert repro(repo, "corpus") == ["clean", "corpus"]
    docs = json.loads((repo / "metrics/scrape.json").read_text())["docs"]
    lock = (repo / "dvc.lock").read_bytes()

    # (c) status: DVC never claims the sources are unchanged (it cannot know before scrape reads
    # them), and holds nothing after scrape stale
    assert _status(repo) == {"scrape": ["always changed"]}
    assert pending(repo, "--with-deps", "corpus") == {}

    # (a) nothing changed: scrape runs, writes the same bytes, and nothing after it reruns
    log = dvc(repo, "repro", "corpus").stdout
    assert "Running stage 'scrape'" in log
    assert "Stage 'clean' didn't change, skipping" in log and "Running stage 'clean'" not in log
    assert (repo / "dvc.lock").read_bytes() == lock

    # (b) a file added to the folder: clean and corpus rerun on it
    shutil.copy2(pages[3], mine / pages[3].name)
    assert _status(repo) == {"scrape": ["always changed"]}  # still the honest answer before a run
    assert repro(repo, "corpus") == ["clean", "corpus"]
    assert json.loads((repo / "metrics/scrape.json").read_text())["docs"] == docs + 1
    manifest = [json.loads(line) for line in (repo / "data/raw/manifest.jsonl").read_text().splitlines()]
    assert any(rec["source"].endswith(pages[3].name) and rec["status"] == "ok" for rec in manifest)
    assert pending(repo, "--with-deps", "corpus") == {}

    # and the file removed again: the first run's documents, so DVC's run cache restores clean and
    # corpus as they were instead of running them
    (mine / pages[3].name).unlink()
    log = dvc(repo, "repro", "corpus").stdout
    assert "Stage 'clean' is cached - skipping run" in log and "Running stage 'clean'" not in log
    lock_raw = [o for o in yaml.safe_load((repo / "dvc.lock").read_text())["stages"]["scrape"]["outs"]
                if o["path"] == "data/raw"]
    first_raw = [o for o in yaml.safe_load(lock)["stages"]["scrape"]["outs"] if o["path"] == "data/raw"]
    assert lock_raw == first_raw
