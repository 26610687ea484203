"""Clean end to end: scrape a folder of constructed documents, clean with 1 and 2 processes."""
from __future__ import annotations

import json

import pymupdf
import pytest

from lib.clean import CleanParams, clean
from lib.core.errors import UserError
from lib.core.params import from_mapping
from lib.scrape import ScrapeParams, scrape
from tests.hpc_text import GOOD, SENTENCES



def _pdf(text: str) -> bytes:
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_textbox(pymupdf.Rect(72, 72, 540, 720), text, fontsize=10)
    return doc.tobytes()


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipe")
    docs = root / "docs"
    docs.mkdir()
    nav = "".join(f'<li><a href="/{i}">Link to page number {i}</a></li>' for i in range(40))
    files = {
        "a-good.md": f"# Caches\n\n{GOOD}\n",
        "b-copy.txt": f"# Caches\n\n{GOOD}\n\n",                       # same text after normalising
        "c-near.html": f"<html><body><main><h1>Caches</h1><p>{GOOD} One more remark.</p></main></body></html>",
        "d-short.txt": "Hello world.",
        "e-links.html": f"<html><body><ul>{nav}</ul><p>{SENTENCES[0]}</p></body></html>",
        "f-paper.pdf": _pdf(" ".join(reversed(SENTENCES)) + " The paper ends here with a conclusion."),
        "g-cp1252.htm": ("<html><head><meta charset='windows-1252'></head><body><p>" +
                         " ".join(SENTENCES[3:]) + " Caf\u00e9 na\u00efve \u2013 fine.</p></body></html>"),
        "h-broken.pdf": b"%PDF-1.7\n" + bytes(range(256)) * 4,
    }
    for name, content in files.items():
        if isinstance(content, str):
            content = content.encode("cp1252" if "cp1252" in name else "utf-8")
        (docs / name).write_bytes(content)
    return root


def run_clean(root, workers, monkeypatch):
    monkeypatch.chdir(root)
    sp = from_mapping(ScrapeParams, {"sources": [{"path": "docs"}], "cache_dir": "", "out_dir": "raw"}, "s")
    scrape(sp)
    p = CleanParams(workers=workers, raw_dir="raw", out_dir=f"clean{workers}")
    metrics = clean(p)
    docs = (root / f"clean{workers}" / "docs.jsonl").read_text()
    rejects = (root / f"clean{workers}" / "rejects.jsonl").read_text()
    return metrics, docs, rejects


def test_clean_keeps_good_drops_bad_with_reasons(raw, monkeypatch):
    metrics, docs, rejects = run_clean(raw, 1, monkeypatch)
    kept = [json.loads(line) for line in docs.splitlines()]
    assert [d["source"] for d in kept] == ["docs/a-good.md", "docs/f-paper.pdf", "docs/g-cp1252.htm"]
    first = kept[0]
    assert set(first) == {"id", "source", "title", "text", "type", "chars", "words", "relevance"}
    assert kept[1]["relevance"] > 0  # the paper is about caches and cores
    assert first["title"] == "Caches" and first["type"] == "markdown" and len(first["id"]) == 16
    assert first["chars"] == len(first["text"]) and first["words"] == len(first["text"].split())
    assert "Caf\u00e9 na\u00efve \u2013 fine." in kept[2]["text"]
    reasons = {json.loads(line)["source"]: json.loads(line)["reason"] for line in rejects.splitlines()}
    assert reasons == {"docs/b-copy.txt": "duplicate_exact", "docs/c-near.html": "duplicate_near",
                       "docs/d-short.txt": "too_short", "docs/e-links.html": "link_list",
                       "docs/h-broken.pdf": "pdf_corrupt"}
    assert metrics["docs_in"] == 8 and metrics["docs_kept"] == 3
    assert {k: v for k, v in metrics["dropped"].items() if v} == {
        "duplicate_exact": 1, "duplicate_near": 1, "too_short": 1, "link_list": 1, "pdf_corrupt": 1}
    assert "stop_words" in metrics["dropped"] and "too_short" not in metrics["rules_not_fired"]
    assert metrics["chars_out"] == sum(d["chars"] for d in kept) < metrics["chars_in"]
    assert metrics["words_out"] == sum(d["words"] for d in kept) < metrics["words_in"]


def test_output_identical_for_any_worker_count(raw, monkeypatch):
    _, docs1, rejects1 = run_clean(raw, 1, monkeypatch)
    _, docs2, rejects2 = run_clean(raw, 2, monkeypatch)
    assert docs1 == docs2 and rejects1 == rejects2


def test_missing_manifest_is_a_user_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(UserError, match="run the scrape stage first"):
        clean(CleanParams(raw_dir="nothing"))
