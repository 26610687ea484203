"""Which stages a code edit makes stale, asked of DVC itself: the pipeline files copied into a
throwaway git + DVC repo, every stage's outputs faked and recorded in a dvc.lock by `dvc commit`
(nothing is trained), then one file edited and `dvc status` read back. This checks dvc.yaml and
the layering together: deps that follow the imports, and imports that keep the expensive stages
apart (an edit to the chat template must not retrain the base model)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.pipeline_helpers import dvc, make_repo

pytestmark = pytest.mark.slow


def fake(path: Path) -> None:
    """A stand-in for an output or a data dep: a file where the name has a suffix, else a folder."""
    if path.exists():
        return
    if path.suffix:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"fake {path.name}\n")
    else:
        path.mkdir(parents=True)
        (path / "fake.txt").write_text("fake\n")


def entries(spec: dict, key: str) -> list[str]:
    return [next(iter(e)) if isinstance(e, dict) else e for e in spec.get(key, [])]


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    repo = make_repo(tmp_path_factory.mktemp("stale") / "repo")
    stages = yaml.safe_load((repo / "dvc.yaml").read_text())["stages"]
    for spec in stages.values():
        for rel in entries(spec, "deps") + entries(spec, "outs") + entries(spec, "metrics") + entries(spec, "plots"):
            fake(repo / rel)
    dvc(repo, "commit", "--force", "--quiet")
    assert stale(repo) == set(), "every stage is up to date once its faked outputs are committed"
    return repo


def stale(repo: Path) -> set[str]:
    out = dvc(repo, "status", "--json").stdout
    return set(json.loads(out or "{}")) - {"check"}


def stale_after_edit(repo: Path, rel: str) -> set[str]:
    path = repo / rel
    original = path.read_text()
    path.write_text(original + "\n# an edit\n")
    try:
        return stale(repo)
    finally:
        path.write_text(original)


def test_a_chat_template_edit_reruns_sft_and_eval_not_pretrain(repo):
    # eval_base scores generation suites through the template too; pretrain never reads it
    assert stale_after_edit(repo, "lib/tokenizer/chat.py") == {"sft", "eval", "eval_base"}


def test_a_model_edit_does_not_rerun_the_tokenizer(repo):
    assert stale_after_edit(repo, "lib/model/gpt.py") == {"pretrain", "sft", "eval", "eval_base"}


def test_a_shard_format_edit_reruns_pack_and_the_stages_reading_shards(repo):
    assert stale_after_edit(repo, "lib/data/shards.py") == {"pack", "pretrain", "sft", "eval"}
