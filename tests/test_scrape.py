"""Scrape: sniffing, local files/folders/globs, datasets, manifest determinism, bad input."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pymupdf
import pytest

from lib.core.params import ParamsError, from_mapping
from lib.scrape import ScrapeParams, scrape
from lib.formats.registry import sniff

HTML = b"<!DOCTYPE html><html><head><title>t</title></head><body><p>Hello MPI</p></body></html>"


def make_pdf(text: str = "Hello PDF world") -> bytes:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), text)
    data = doc.tobytes()
    doc.close()
    return data


def params(tmp_path: Path, sources: list[dict], **kw) -> ScrapeParams:
    base = {"sources": sources, "out_dir": str(tmp_path / "raw"), "cache_dir": "",
            "rate_limit_s": 0.0, "backoff_s": 0.0, "timeout_s": 2.0}
    base.update(kw)
    return from_mapping(ScrapeParams, base, "params.yaml: scrape")


@pytest.mark.parametrize("data,name,expected", [
    (make_pdf(), "notes.txt", "pdf"),
    (HTML, "page.shtml", "html"),
    (b"  <html><body><div>x</div></body></html>", "x.dat", "html"),
    (b"# Title\n\nSome *text* and `code`.\n\n- a\n- b\n", "README", "markdown"),
    (b"Plain words about cache lines and memory bandwidth.\n", "a.md", "text"),
    (b"\x89PNG\r\n\x1a\n\x00\x00binary", "img.html", "unknown"),
    (bytes(range(256)) * 4, "blob.txt", "unknown"),
    (b"", "empty.txt", "unknown"),
    (b'<!-- generated -->\n<?xml version="1.0"?>\n<html><body>x</body></html>', "a.txt", "html"),
    (b'"""Writes pages."""\nPAGE = "<!DOCTYPE html><html><body></body></html>"\n', "gen.py", "text"),
    ("\ufeff<p>Caf\u00e9</p>".encode("utf-8"), "x", "html"),
])
def test_sniff_trusts_content_not_name(data, name, expected):
    assert sniff(data, name) == expected


def test_folder_scrape_names_by_hash_and_records_failures(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / "a.htm").write_bytes(HTML)
    (docs / "sub" / "paper.bin").write_bytes(make_pdf())
    (docs / "sub" / "notes.txt").write_text("Plain text about NUMA.\n")
    (docs / "copy.txt").write_text("Plain text about NUMA.\n")
    (docs / "empty.txt").write_bytes(b"")
    (docs / "skip.log").write_text("excluded by glob")
    (docs / ".hidden").write_text("hidden files are skipped")
    p = params(tmp_path, [{"path": "docs", "exclude": ["*.log"]}, {"path": "missing/file.pdf"}],
               out_dir="raw")
    metrics, manifest = scrape(p)
    by_source = {r["source"]: r for r in manifest}
    assert set(by_source) == {"docs/a.htm", "docs/copy.txt", "docs/empty.txt", "docs/sub/notes.txt",
                              "docs/sub/paper.bin", "missing/file.pdf"}
    assert by_source["docs/sub/paper.bin"]["type"] == "pdf"
    assert by_source["docs/a.htm"]["type"] == "html"
    assert by_source["docs/empty.txt"]["reason"] == "empty"
    assert by_source["missing/file.pdf"]["reason"] == "not_found"
    pdf = by_source["docs/sub/paper.bin"]
    assert pdf["path"] == f"raw/docs/{pdf['sha256']}.pdf"
    assert (tmp_path / pdf["path"]).read_bytes() == (docs / "sub" / "paper.bin").read_bytes()
    assert by_source["docs/copy.txt"]["sha256"] == by_source["docs/sub/notes.txt"]["sha256"]
    assert metrics["ok"] == 4 and metrics["failed"] == 2 and metrics["unique_docs"] == 3
    assert metrics["failed_by_reason"] == {"empty": 1, "not_found": 1}
    text = (tmp_path / "raw" / "manifest.jsonl").read_text()
    assert str(tmp_path) not in text
    scrape(p)
    assert (tmp_path / "raw" / "manifest.jsonl").read_text() == text


def test_glob_include_and_byte_cap(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "small.txt").write_text("tiny document")
    (tmp_path / "d" / "big.txt").write_text("x" * 5000)
    (tmp_path / "d" / "other.md").write_text("# heading\n")
    metrics, manifest = scrape(params(tmp_path, [{"path": "d/*.txt"}], max_bytes=1000, out_dir="raw"))
    assert [(r["source"], r["reason"]) for r in manifest] == [("d/big.txt", "too_large"),
                                                             ("d/small.txt", None)]


def test_dataset_jsonl_one_document_per_record(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rows = [{"content": "First document about OpenMP.", "url": "https://a.example/1"},
            {"content": ""}, "not an object", {"content": "Second document about MPI."}]
    lines = [json.dumps(r) for r in rows] + ["{broken"]
    (tmp_path / "dump.jsonl").write_text("\n".join(lines) + "\n")
    p = params(tmp_path, [{"dataset": "dump.jsonl", "text_field": "content"},
                          {"dataset": "gone.jsonl"}], out_dir="raw")
    metrics, manifest = scrape(p)
    got = [(r["source"], r["url"], r["reason"]) for r in manifest]
    assert got == [("dump.jsonl#L1", "https://a.example/1", None), ("dump.jsonl#L2", None, "no_text"),
                   ("dump.jsonl#L3", None, "not_an_object"), ("dump.jsonl#L4", None, None),
                   ("dump.jsonl#L5", None, "invalid_json"), ("gone.jsonl", None, "not_found")]
    assert metrics["ok"] == 2


@pytest.mark.parametrize("source,needle", [
    ({"path": "a", "url": "https://x.org"}, "exactly one of"),
    ({}, "exactly one of"),
    ({"url": "ftp://x.org/file"}, "only http, https, file"),
    ({"crawl": "file:///etc"}, "only http, https"),
    ({"path": "a", "colour": 1}, "unknown key"),
])
def test_bad_source_config_is_one_clear_error(tmp_path, source, needle):
    with pytest.raises(ParamsError, match=needle):
        params(tmp_path, [source])


def test_stage_fails_only_when_nothing_fetched(tmp_path, monkeypatch):
    import stages.scrape as stage
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(
        "scrape:\n  sources: [{path: nowhere}]\n  cache_dir: ''\n  out_dir: raw\n")
    with pytest.raises(SystemExit) as exc:
        from lib.core.stage import run_stage
        run_stage(stage.main)
    assert exc.value.code == 2
    # the headline figures in metrics/, the detailed counts in the cached stats file, timings apart
    assert json.loads((tmp_path / "metrics" / "scrape.json").read_text()) == {"docs": 0, "failed": 1}
    assert json.loads((tmp_path / "data" / "stats" / "scrape.json").read_text())["failed_by_reason"] == \
        {"not_found": 1}
    assert set(json.loads((tmp_path / "metrics" / "timing" / "scrape.json").read_text())) == {"seconds"}
    assert os.path.exists(tmp_path / "raw" / "manifest.jsonl")


def test_file_url_and_parquet_without_pyarrow(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "note.txt").write_text("A local file named by a file URL.")
    (tmp_path / "data.parquet").write_bytes(b"PAR1not really")
    p = params(tmp_path, [{"url": (tmp_path / "note.txt").as_uri()}, {"dataset": "data.parquet"}],
               out_dir="raw")
    _, manifest = scrape(p)
    assert manifest[0]["status"] == "ok" and manifest[0]["url"].startswith("file://")
    assert manifest[0]["source"] == "note.txt"
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        assert manifest[1]["reason"] == "parquet_needs_pyarrow"
    else:
        assert manifest[1]["reason"] == "unreadable"


def test_parquet_dataset_one_document_per_record(tmp_path, monkeypatch):
    import pyarrow as pa
    import pyarrow.parquet as pq

    monkeypatch.chdir(tmp_path)
    texts = ["MPI_Allreduce combines values from every rank.", "", "OpenMP threads share the heap."]
    table = pa.table({"body": texts, "link": ["https://a.example/1", None, "https://a.example/3"]})
    pq.write_table(table, tmp_path / "dump.parquet")
    p = params(tmp_path, [{"dataset": "dump.parquet", "text_field": "body", "url_field": "link"}], out_dir="raw")
    _, manifest = scrape(p)
    ok = [m for m in manifest if m["status"] == "ok"]
    assert [m["url"] for m in ok] == ["https://a.example/1", "https://a.example/3"]
    assert {m["source"] for m in manifest} == {"dump.parquet#R1", "dump.parquet#R2", "dump.parquet#R3"}
    stored = sorted((tmp_path / "raw" / "docs").iterdir())
    assert sorted(p.read_text() for p in stored) == sorted(t for t in texts if t)


def test_patterns_that_skip_files_are_counted_and_named(tmp_path, monkeypatch):
    """MPICH's real man pages mix .html and .htm: `include: ["*.html"]` leaves the .htm ones out,
    and scrape says so per source, by count in its metrics and by name in skipped.jsonl."""
    import stages.scrape as stage
    from lib.core.stage import run_stage

    www3 = Path("/usr/share/doc/mpich-doc/html/www3")
    if not www3.is_dir():
        pytest.skip("needs the Debian package mpich-doc (apt-get install mpich-doc)")
    pages = sorted(www3.glob("MPI_Comm_*"))[:20] + sorted(www3.glob("MPI_ERR*.htm"))[:5]
    src = tmp_path / "pages"
    src.mkdir()
    for page in pages:
        (src / page.name).write_bytes(page.read_bytes())
    htm = sorted(p.name for p in pages if p.suffix == ".htm")
    assert htm and len(htm) < len(pages)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(
        "scrape:\n  sources:\n    - {path: pages, include: ['*.html']}\n    - {path: pages}\n"
        "  cache_dir: ''\n  out_dir: raw\n")
    run_stage(stage.main)
    metrics = json.loads((tmp_path / "data" / "stats" / "scrape.json").read_text())  # every figure
    assert metrics["skipped_by_patterns"] == {"sources[0]: pages": len(htm), "sources[1]: pages": 0}
    skipped = [json.loads(line) for line in (tmp_path / "raw" / "skipped.jsonl").read_text().splitlines()]
    assert [r["path"] for r in skipped] == [f"pages/{name}" for name in htm]
    assert metrics["ok"] == len(pages) * 2 - len(htm)
