"""The server's HTTP edges with a plain client (http.client): every bad request is a 4xx in
OpenAI's error shape, the API key guards every path, the static route stays in its folder, and a
client that disconnects mid-stream frees its row."""
from __future__ import annotations

import base64
import http.client
import json
import socket
import time
from urllib.parse import urlsplit

import pytest

from tests.serve_fixtures import NAME, running, tiny_served

CHAT = {"model": NAME, "messages": [{"role": "user", "content": "What is MPI?"}], "max_tokens": 4}


def request(url: str, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), data


@pytest.fixture(scope="module")
def url():
    with running(tiny_served(max_body=4096)) as base:
        yield base


def _openai_error(data: bytes) -> dict:
    err = json.loads(data)["error"]
    assert set(err) == {"message", "type", "param", "code"} and err["message"]
    assert "Traceback" not in err["message"]
    return err


@pytest.mark.parametrize("path, body, status, param", [
    ("/v1/chat/completions", b'{"model": "tiny", "messages": [', 400, None),             # malformed JSON
    ("/v1/chat/completions", b'["a list"]', 400, None),
    ("/v1/chat/completions", json.dumps({**CHAT, "model": "other"}).encode(), 404, "model"),
    ("/v1/chat/completions", json.dumps({**CHAT, "max_tokens": 0}).encode(), 400, "max_tokens"),
    ("/v1/chat/completions", json.dumps({**CHAT, "max_tokens": -3}).encode(), 400, "max_tokens"),
    ("/v1/chat/completions", json.dumps({**CHAT, "max_tokens": 10_000}).encode(), 400, "max_tokens"),
    ("/v1/chat/completions", json.dumps({**CHAT, "max_tokens": "5"}).encode(), 400, "max_tokens"),
    ("/v1/chat/completions", json.dumps({**CHAT, "messages": "hi"}).encode(), 400, "messages"),
    ("/v1/chat/completions", json.dumps({**CHAT, "stop": ["a", "b", "c", "d", "e"]}).encode(), 400, "stop"),
    ("/v1/chat/completions", json.dumps({**CHAT, "n": 2}).encode(), 400, "n"),
    ("/v1/chat/completions", json.dumps({**CHAT, "logprobs": True}).encode(), 400, "logprobs"),
    ("/v1/completions", json.dumps({"model": NAME, "prompt": "a", "frequency_penalty": 0.5}).encode(), 400,
     "frequency_penalty"),
    ("/v1/completions", json.dumps({"model": NAME, "prompt": "node " * 100}).encode(), 400, "prompt"),
    ("/v1/completions", json.dumps({"model": NAME, "prompt": [1, 2, 99999]}).encode(), 400, "prompt"),
    ("/v1/completions", json.dumps({"model": NAME, "prompt": {"x": 1}}).encode(), 400, "prompt"),
    ("/v1/completions", b"x" * 5000, 413, None),                                           # oversized body
])
def test_bad_requests_are_4xx_in_openai_shape(url, path, body, status, param):
    got, headers, data = request(url, "POST", path, body, {"Content-Type": "application/json"})
    assert got == status
    assert headers["content-type"].startswith("application/json")
    assert _openai_error(data)["param"] == param


def test_oversized_body_without_content_length(url):
    """A chunked body has no length up front: it is counted as it arrives."""
    u = urlsplit(url)
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    conn.request("POST", "/v1/completions", body=iter([b"x" * 3000, b"y" * 3000]), encode_chunked=True,
                 headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"})
    r = conn.getresponse()
    assert r.status == 413
    _openai_error(r.read())


def test_unknown_path_and_method_are_openai_errors(url):
    status, _, data = request(url, "GET", "/v1/nothing")
    assert status == 404
    _openai_error(data)
    status, _, data = request(url, "GET", "/v1/chat/completions")
    assert status == 405
    _openai_error(data)


@pytest.mark.parametrize("path", [
    "/static/../app.py", "/static/..%2fapp.py", "/static/%2e%2e/app.py", "/static/%2e%2e%2fapp.py",
    "/static/..%2f..%2fcli%2fserve.py", "/static/....//app.py", "/static/%2e%2e%5capp.py",
    "/static//etc/passwd", "/static/%2fetc%2fpasswd",
])
def test_static_route_stays_in_its_folder(url, path):
    status, _, data = request(url, "GET", path)  # http.client sends the path as is: no client-side cleanup
    assert status in (400, 404)
    assert b"create_app" not in data and b"root:" not in data


def test_page_and_assets_are_served(url):
    status, headers, data = request(url, "GET", "/")
    assert status == 200 and b"<title>hpc-lm chat</title>" in data and headers["content-type"].startswith("text/html")
    for asset in ("/static/chat.js", "/static/style.css"):
        status, _, data = request(url, "GET", asset)
        assert status == 200 and data


def test_page_loads_nothing_from_elsewhere():
    """Offline: no CDN, every asset from this server."""
    from lib.serve.app import STATIC
    for f in STATIC.iterdir():
        text = f.read_text()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, f.name


def test_api_key_guards_every_path():
    with running(tiny_served(api_key="sesame")) as url:
        for method, path, body in [("GET", "/health", None), ("GET", "/v1/models", None), ("GET", "/", None),
                                   ("GET", "/static/chat.js", None),
                                   ("POST", "/v1/chat/completions", json.dumps(CHAT).encode())]:
            status, headers, data = request(url, method, path, body)
            assert status == 401, path
            assert _openai_error(data)["code"] == "invalid_api_key"
            status, _, _ = request(url, method, path, body, {"Authorization": "Bearer wrong"})
            assert status == 401, path
            status, _, _ = request(url, method, path, body, {"Authorization": "Bearer sesame"})
            assert status == 200, path
        # the browser's way: the page asks for the key (Basic, any user name), then sends it
        assert "Basic" in request(url, "GET", "/")[1]["www-authenticate"]
        basic = "Basic " + base64.b64encode(b"me:sesame").decode()
        assert request(url, "GET", "/", None, {"Authorization": basic})[0] == 200


def test_disconnect_mid_stream_frees_the_row():
    served = tiny_served(step_delay=0.05)
    with running(served) as url:
        u = urlsplit(url)
        body = json.dumps({**CHAT, "max_tokens": 60, "stream": True}).encode()
        sock = socket.create_connection((u.hostname, u.port))
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: %d\r\n\r\n" % len(body) + body)
        got = b""
        while got.count(b"data: ") < 3:  # the role chunk and two pieces of text
            got += sock.recv(4096)
        assert len(served.engine.rows) == 1
        sock.close()
        deadline = time.monotonic() + 1.5  # the ~57 tokens left would take about 3 s
        while served.engine.rows and time.monotonic() < deadline:
            time.sleep(0.01)
        assert not served.engine.rows
        status, _, data = request(url, "GET", "/health")
        assert status == 200 and json.loads(data)["running"] == 0
