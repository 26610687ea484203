"""Outputs get the permissions the user's umask gives (as with any tool), not mkstemp's 0600, so
teammates on a shared file system can read models, metrics and exports."""
from __future__ import annotations

import os
import stat

import pytest

from lib.core.io import JsonlWriter, atomic_path, atomic_write_text, current_umask, write_json


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("mask, expected", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, expected):
    umask(mask)
    assert current_umask() == mask
    write_json(tmp_path / "metrics.json", {"a": 1})
    atomic_write_text(tmp_path / "config.json", "{}\n")
    with JsonlWriter(tmp_path / "docs.jsonl") as out:
        out.write({"text": "x"})
    for name in ("metrics.json", "config.json", "docs.jsonl"):
        assert mode(tmp_path / name) == expected, name


def test_an_atomic_directory_follows_the_umask(tmp_path, umask):
    umask(0o022)
    with atomic_path(tmp_path / "model") as tmp:
        tmp.mkdir()
        write_json(tmp / "config.json", {})
    assert mode(tmp_path / "model") == 0o755
    assert mode(tmp_path / "model" / "config.json") == 0o644
