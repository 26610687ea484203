"""Atomic outputs and line-numbered JSONL errors."""
import json

import pytest

from lib.core.errors import UserError
from lib.core.io import JsonlWriter, atomic_path, iter_jsonl, read_jsonl, write_csv, write_json


def test_write_json_is_deterministic(tmp_path):
    write_json(tmp_path / "a.json", {"b": 1, "a": [1.5, "é"]})
    write_json(tmp_path / "b.json", {"a": [1.5, "é"], "b": 1})
    assert (tmp_path / "a.json").read_bytes() == (tmp_path / "b.json").read_bytes()
    assert (tmp_path / "a.json").read_text(encoding="utf-8").endswith("\n")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "half.txt").write_text("partial")
            raise RuntimeError("killed mid-write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert (target / "old.txt").read_text() == "old"


def test_atomic_path_replaces_directory(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with atomic_path(target) as tmp:
        tmp.mkdir()
        (tmp / "new.txt").write_text("new")
    assert [p.name for p in target.iterdir()] == ["new.txt"]


def test_jsonl_roundtrip_and_bad_line(tmp_path):
    path = tmp_path / "x.jsonl"
    with JsonlWriter(path) as out:
        out.write({"text": "a"})
        out.write({"text": "b"})
    assert read_jsonl(path) == [{"text": "a"}, {"text": "b"}]
    path.write_text('{"text": "ok"}\n\n{"text": broken}\n')
    with pytest.raises(UserError, match=r"x.jsonl:3: invalid JSON"):
        list(iter_jsonl(path))
    path.write_text('[1, 2]\n')
    with pytest.raises(UserError, match=r"x.jsonl:1: expected a JSON object"):
        list(iter_jsonl(path))


def test_write_csv(tmp_path):
    write_csv(tmp_path / "c.csv", ["step", "loss"], [[0, 1.23456789], [1, 0.5]])
    assert (tmp_path / "c.csv").read_text() == "step,loss\n0,1.23457\n1,0.5\n"


def test_broken_json_line_is_one_whole_message_without_advice(tmp_path):
    """The fault only (column, reason, the text there), once; the caller adds its own advice."""
    from lib.core.io import parse_jsonl_line
    line = '{"prompt": "What is MPI?", "response": "A message passing ' + "standard " * 40 + '}\n'
    with pytest.raises(UserError) as err:
        parse_jsonl_line(line, "sft.jsonl:7")
    text = str(err.value)
    assert text.startswith("sft.jsonl:7: invalid JSON at column 420: Invalid control character (near ")
    assert "\n" not in text and len(text) < 160 and "fix" not in text
