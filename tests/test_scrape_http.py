"""Scrape over HTTP against a local server on 127.0.0.1 (bounded, stops itself)."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pymupdf
import pytest

from lib.core.params import from_mapping
from lib.scrape import ScrapeParams, scrape
from lib.scrape.cache import HttpCache
from lib.scrape.http import Fetcher

PAGE = b"<html><head><title>Page</title></head><body><main><p>MPI text</p></main></body></html>"


def _pdf() -> bytes:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "A PDF served as octet-stream")
    return doc.tobytes()


PDF = _pdf()


class Handler(BaseHTTPRequestHandler):
    hits: dict[str, int] = {}
    agents: list[str] = []
    times: list[float] = []

    def log_message(self, *args):  # keep test output quiet
        pass

    def send(self, status, body=b"", ctype="text/html", headers=()):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: C901 -- one route table
        path = self.path
        Handler.hits[path] = Handler.hits.get(path, 0) + 1
        Handler.agents.append(self.headers.get("User-Agent", ""))
        Handler.times.append(time.monotonic())
        if path == "/robots.txt":
            return self.send(200, b"User-agent: *\nDisallow: /private\n", "text/plain")
        if path == "/page.html":
            if self.headers.get("If-None-Match") == '"v1"':
                return self.send(304)
            return self.send(200, PAGE, "text/html; charset=utf-8", [("ETag", '"v1"')])
        if path == "/paper":
            return self.send(200, PDF, "application/octet-stream")
        if path == "/error":
            return self.send(500, b"boom")
        if path == "/flaky":
            if Handler.hits[path] == 1:
                return self.send(503, b"busy", headers=[("Retry-After", "0")])
            return self.send(200, b"<html><body><p>recovered</p></body></html>")
        if path == "/slow":
            time.sleep(0.6)
            return self.send(200, PAGE)
        if path in ("/loop-a", "/loop-b"):
            other = "/loop-b" if path == "/loop-a" else "/loop-a"
            return self.send(302, headers=[("Location", other)])
        if path.startswith("/chain/"):
            n = int(path.rsplit("/", 1)[-1])
            return self.send(302, headers=[("Location", f"/chain/{n + 1}")])
        if path == "/busy":
            return self.send(429, b"slow down", headers=[("Retry-After", "0")])
        if path == "/moved":
            return self.send(301, headers=[("Location", "/page.html")])
        if path == "/gz":
            import gzip
            return self.send(200, gzip.compress(PAGE), "text/html", [("Content-Encoding", "gzip")])
        if path == "/big":
            return self.send(200, b"x" * 5000, "text/plain")
        if path == "/ftp":
            return self.send(302, headers=[("Location", "ftp://127.0.0.1/file")])
        if path.startswith("/site/"):
            links = {"/site/": ["a.html", "b.html", "logo.png", "http://elsewhere.invalid/x"],
                     "/site/a.html": ["b.html", "deep.html", "skip-me.html"],
                     "/site/b.html": ["/private/secret.html"]}.get(path, [])
            body = "".join(f'<a href="{h}">link</a>' for h in links)
            return self.send(200, f"<html><body><p>{path}</p>{body}</body></html>".encode())
        return self.send(404, b"not found")


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # the client hung up on /slow: expected
        pass


@pytest.fixture(scope="module")
def server():
    httpd = QuietServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    stopper = threading.Timer(60.0, httpd.shutdown)  # never outlives a stuck test run
    stopper.daemon = True
    stopper.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    stopper.cancel()
    httpd.shutdown()
    httpd.server_close()


def params(tmp_path, sources, **kw) -> ScrapeParams:
    base = {"sources": sources, "out_dir": str(tmp_path / "raw"), "cache_dir": str(tmp_path / "cache"),
            "rate_limit_s": 0.0, "backoff_s": 0.0, "timeout_s": 0.3, "retries": 1,
            "max_bytes": 100_000, "user_agent": "test-agent/1.0"}
    base.update(kw)
    return from_mapping(ScrapeParams, base, "params.yaml: scrape")


def test_every_bad_url_gets_a_reason_and_the_run_goes_on(server, tmp_path):
    names = ["page.html", "paper", "missing", "error", "slow", "loop-a", "big", "private/x.html",
             "moved", "flaky", "ftp", "gz"]
    p = params(tmp_path, [{"url": f"{server}/{n}"} for n in names], max_bytes=4000)
    metrics, manifest = scrape(p)
    got = {r["source"].rsplit("/", 1)[-1] if "private" not in r["source"] else "private":
           (r["reason"], r["type"]) for r in manifest}
    assert got == {"page.html": (None, "html"), "paper": (None, "pdf"), "missing": ("http_404", "unknown"),
                   "error": ("http_500", "unknown"), "slow": ("timeout", "unknown"),
                   "loop-a": ("redirect_loop", "unknown"), "big": ("too_large", "unknown"),
                   "private": ("robots_disallowed", "unknown"), "moved": (None, "html"),
                   "flaky": (None, "html"), "ftp": ("bad_scheme", "unknown"), "gz": (None, "html")}
    gz = next(r for r in manifest if r["source"].endswith("/gz"))
    assert gz["sha256"] == next(r for r in manifest if r["source"].endswith("/page.html"))["sha256"]
    moved = next(r for r in manifest if r["source"].endswith("/moved"))
    assert moved["url"] == f"{server}/page.html"
    assert metrics["ok"] == 5 and metrics["failed"] == 7
    assert Handler.hits["/error"] == 2  # one retry on 5xx
    assert set(Handler.agents) == {"test-agent/1.0"}
    assert [r["source"] for r in manifest] == [f"{server}/{n}" for n in names]


def test_conditional_refetch_uses_cache(server, tmp_path):
    p = params(tmp_path, [{"url": f"{server}/page.html"}])
    fetcher = Fetcher(p, HttpCache(p.cache_dir))
    first = fetcher.fetch(f"{server}/page.html")
    second = fetcher.fetch(f"{server}/page.html")
    assert first.ok and not first.not_modified
    assert second.ok and second.not_modified and second.data == first.data == PAGE
    _, manifest1 = scrape(p)
    text1 = (tmp_path / "raw" / "manifest.jsonl").read_text()
    scrape(p)
    assert (tmp_path / "raw" / "manifest.jsonl").read_text() == text1


def test_rate_limit_spaces_requests_to_one_host(server, tmp_path):
    p = params(tmp_path, [{"url": f"{server}/page.html"}], rate_limit_s=0.25, cache_dir="")
    fetcher = Fetcher(p)
    start = len(Handler.times)
    for _ in range(3):
        fetcher.fetch(f"{server}/missing")
    stamps = Handler.times[start:]
    assert len(stamps) == 4  # robots.txt + 3 pages
    assert min(b - a for a, b in zip(stamps, stamps[1:])) >= 0.15  # 0.25 less scheduling jitter


def test_crawl_same_site_with_depth_and_patterns(server, tmp_path):
    p = params(tmp_path, [{"crawl": f"{server}/site/", "max_depth": 1, "exclude": ["*skip-me*"]}])
    _, manifest = scrape(p)
    assert [r["source"] for r in manifest] == [f"{server}/site/", f"{server}/site/a.html",
                                              f"{server}/site/b.html"]
    p = params(tmp_path, [{"crawl": f"{server}/site/", "max_depth": 3, "max_pages": 10,
                           "exclude": ["*skip-me*"]}])
    _, manifest = scrape(p)
    got = [(r["source"].replace(server, ""), r["reason"]) for r in manifest]
    assert got == [("/site/", None), ("/site/a.html", None), ("/site/b.html", None),
                   ("/site/deep.html", None), ("/private/secret.html", "robots_disallowed")]
    p = params(tmp_path, [{"crawl": f"{server}/site/", "max_depth": 3, "max_pages": 2}])
    _, manifest = scrape(p)
    assert len(manifest) == 2


def test_redirect_cap_and_429_retries(server, tmp_path):
    p = params(tmp_path, [{"url": f"{server}/chain/0"}, {"url": f"{server}/busy"}],
               max_redirects=3, retries=2)
    _, manifest = scrape(p)
    assert [r["reason"] for r in manifest] == ["too_many_redirects", "http_429"]
    assert manifest[0]["url"] == f"{server}/chain/4"
    assert Handler.hits["/busy"] == 3  # first try and two retries


def test_connection_refused_is_recorded(tmp_path):
    import socket
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    _, manifest = scrape(params(tmp_path, [{"url": f"http://127.0.0.1:{port}/x"}], retries=0))
    assert manifest[0]["status"] == "failed"
    assert manifest[0]["reason"] == "connection_error"
