"""The HTTP attention provider against a fake OpenAI-compatible server on 127.0.0.1: valid,
malformed, out-of-range, 429 and slow replies; the cache; the request cap; the key kept secret;
and a few training steps in external mode fed by the fake."""
from __future__ import annotations

import json
import re
import threading
import time
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from lib.attention import (AttentionError, AttentionParams, AttentionSource, HttpParams, HttpProvider,
                           ProviderFailure, ScoreCache, wrap_for_external)
from lib.model.config import ModelConfig
from lib.model.gpt import GPT

KEY = "sk-test-SECRET-4f9a1c"
ENV = {"HPCLM_ATTN_BASE_URL": "", "HPCLM_ATTN_MODEL": "fake-scorer-1", "HPCLM_ATTN_API_KEY": KEY}


def recency(n: int) -> list[list[float]]:
    """A causal score pattern: recent tokens matter more (row i only depends on i)."""
    return [[1.0 / (1 + i - j) for j in range(i + 1)] for i in range(n)]


class FakeServer:
    """An OpenAI-compatible /chat/completions on 127.0.0.1 that plays a script of replies, then
    answers valid scores. Records each request; shuts itself down after ``lifetime_s``."""

    def __init__(self, script=(), lifetime_s: float = 30.0):
        self.script = list(script)
        self.requests: list[dict] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                owner.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                n = int(re.search(r"Here are the (\d+) tokens", body["messages"][1]["content"]).group(1))
                kind = owner.script.pop(0) if owner.script else "valid"
                try:
                    self._reply(kind, n)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout test)
                    pass

            def _reply(self, kind: str, n: int):
                content = json.dumps({"scores": recency(n)})
                if kind == "malformed":
                    content = '{"scores": [[1.0], [0.5, oops'
                elif kind == "range":
                    content = json.dumps({"scores": [[7.5] * (i + 1) for i in range(n)]})
                elif kind == "fenced":
                    content = "```json\n" + content + "\n```"
                elif kind == "slow":
                    time.sleep(0.6)
                elif kind in ("429", "500", "401"):
                    code = int(kind)
                    data = json.dumps({"error": f"nope, key {self.headers.get('Authorization')}"}).encode()
                    self.send_response(code)
                    if code == 429:
                        self.send_header("Retry-After", "0")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                    return
                data = json.dumps({"id": "x", "object": "chat.completion", "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": content}}]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.server.block_on_close = False
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.timer = threading.Timer(lifetime_s, self.close)
        self.timer.daemon = True

    def __enter__(self):
        self.thread.start()
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        self.timer.cancel()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(autouse=True)
def no_proxy_one_thread(monkeypatch):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices on shared cores
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    yield
    torch.set_num_threads(threads)


def make(server: FakeServer, tmp_path: Path, **overrides):
    params = replace(AttentionParams(mode="external", provider="http", cache_dir=str(tmp_path / "cache"),
                                     retries=2, backoff_s=0.0, timeout_s=5.0), **overrides)
    sleeps: list[float] = []
    provider = HttpProvider(params, {**ENV, "HPCLM_ATTN_BASE_URL": server.url}, sleep=sleeps.append)
    source = AttentionSource(provider, ScoreCache(params.cache_dir), on_bad_reply=params.on_bad_reply)
    return provider, source, sleeps


def expected(n: int) -> np.ndarray:
    m = np.zeros((n, n))
    for i, row in enumerate(recency(n)):
        m[i, :i + 1] = np.array(row) / sum(row)
    return m


def test_valid_reply_request_shape_and_normalised_rows(tmp_path):
    with FakeServer(["fenced"]) as server:
        provider, source, _ = make(server, tmp_path)
        m = source.matrix([5, 6, 7, 8])
        np.testing.assert_allclose(m, expected(4), rtol=1e-6)
        (req,) = server.requests
    assert req["path"] == "/v1/chat/completions" and req["auth"] == f"Bearer {KEY}"
    assert req["body"]["model"] == "fake-scorer-1"
    assert [m["role"] for m in req["body"]["messages"]] == ["system", "user"]
    assert '{"scores"' in req["body"]["messages"][1]["content"]
    assert provider.requests == 1


def test_malformed_then_valid_is_retried(tmp_path):
    with FakeServer(["malformed"]) as server:
        provider, source, _ = make(server, tmp_path)
        np.testing.assert_allclose(source.matrix([1, 2, 3]), expected(3), rtol=1e-6)
    assert provider.requests == 2


@pytest.mark.parametrize("kind, message", [("malformed", "not valid JSON"), ("range", "outside [0, 1]")])
def test_bad_replies_error_or_fall_back(tmp_path, kind, message):
    with FakeServer([kind] * 6) as server:
        provider, source, _ = make(server, tmp_path, retries=1)
        with pytest.raises(ProviderFailure, match=re.escape(message)) as err:
            source.matrix([1, 2, 3])
        assert "on_bad_reply: uniform" in str(err.value) and provider.requests == 2
        provider, source, _ = make(server, tmp_path, retries=1, on_bad_reply="uniform")
        np.testing.assert_allclose(source.matrix([1, 2, 3]), np.tril(np.ones((3, 3))) / [[1], [2], [3]])
        assert source.metrics()["attention_fallbacks"] == 1
    assert not list((tmp_path / "cache").rglob("*.npy"))  # a fallback is never cached


def test_429_and_500_are_retried_with_backoff(tmp_path):
    with FakeServer(["429", "500"]) as server:
        provider, source, sleeps = make(server, tmp_path, backoff_s=0.5)
        np.testing.assert_allclose(source.matrix([4, 4]), expected(2), rtol=1e-6)
    assert provider.requests == 3
    assert sleeps == [0.0, 1.0]  # Retry-After: 0 wins; then backoff_s * 2


def test_slow_reply_times_out_then_retries(tmp_path):
    with FakeServer(["slow"]) as server:
        provider, source, _ = make(server, tmp_path, timeout_s=0.2)
        np.testing.assert_allclose(source.matrix([9, 8, 7]), expected(3), rtol=1e-6)
        assert provider.requests == 2
    with FakeServer(["slow"]) as server:
        provider, source, _ = make(server, tmp_path / "b", timeout_s=0.2, retries=0)
        with pytest.raises(ProviderFailure, match="no reply within timeout_s=0.2s"):
            source.matrix([9, 8, 7])


def test_cache_second_run_makes_no_request(tmp_path):
    seqs = [[1, 2, 3], [3, 2, 1], [1, 2, 3, 4]]
    with FakeServer() as server:
        _, first, _ = make(server, tmp_path)
        a = [first.matrix(s) for s in seqs]
        assert len(server.requests) == 3 and first.metrics()["attention_cache_misses"] == 3
        provider, second, _ = make(server, tmp_path)  # a new run: new provider, same cache directory
        b = [second.matrix(s) for s in seqs]
        assert len(server.requests) == 3 and provider.requests == 0
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    m = second.metrics()
    assert m["attention_cache_hits"] == 3 and m["attention_cache_hit_rate"] == 1.0 and m["attention_requests"] == 0


def test_request_cap(tmp_path):
    with FakeServer() as server:
        provider, source, _ = make(server, tmp_path, max_requests=2)
        source.matrix([1, 2])
        source.matrix([2, 1])
        with pytest.raises(AttentionError, match=r"attention.max_requests \(2\) reached"):
            source.matrix([1, 1])
        assert len(server.requests) == 2
        _, cached_only, _ = make(server, tmp_path, max_requests=0, on_bad_reply="uniform")
        cached_only.matrix([1, 2])  # cache hits need no request
        with pytest.raises(AttentionError, match="max_requests"):  # the cap is never a fallback
            cached_only.matrix([5, 5])


def test_key_never_appears_in_errors_metrics_or_cache(tmp_path):
    with FakeServer(["401", "malformed", "malformed"]) as server:
        provider, source, _ = make(server, tmp_path, retries=1)
        with pytest.raises(AttentionError) as err:  # the server echoes the Authorization header back
            source.matrix([1, 2])
        assert "HTTP 401" in str(err.value) and "HPCLM_ATTN_API_KEY" in str(err.value)
        with pytest.raises(ProviderFailure) as err2:
            source.matrix([1, 2])
        source.matrix([3, 4])
    blobs = [str(err.value), repr(err.value), str(err2.value), repr(provider), json.dumps(source.metrics())]
    blobs += [p.read_bytes().decode("latin-1") for p in (tmp_path / "cache").rglob("*") if p.is_file()]
    assert (tmp_path / "cache").exists() and all(KEY not in b for b in blobs)
    assert all(KEY not in json.dumps(r["body"]) for r in server.requests)  # only in the header


def test_missing_environment_is_a_clear_error(tmp_path):
    params = AttentionParams(mode="external", provider="http", http=HttpParams(model_env="MY_MODEL_VAR"))
    with pytest.raises(AttentionError, match="MY_MODEL_VAR is not set"):
        HttpProvider(params, {"HPCLM_ATTN_BASE_URL": "http://127.0.0.1:9/v1"})


def test_train_a_few_steps_on_the_fake_provider(tmp_path):
    torch.manual_seed(0)
    model = GPT(ModelConfig(n_layer=2, n_head=2, n_kv_head=1, d_model=16, d_ff=32, max_seq_len=16,
                            dropout=0.0, vocab_size=24))
    with FakeServer() as server:
        params = AttentionParams(mode="external", provider="http", cache_dir=str(tmp_path / "cache"), backoff_s=0.0)
        provider = HttpProvider(params, {**ENV, "HPCLM_ATTN_BASE_URL": server.url})
        run = wrap_for_external(model, params, provider=provider)
        x = torch.randint(0, 24, (4, 12), generator=torch.Generator().manual_seed(1))
        y = torch.roll(x, -1, dims=1)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
        losses = []
        for _ in range(6):
            _, loss = model(x, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(float(loss.detach()))
        assert len(server.requests) == 4  # one per distinct row; every later step is a cache hit
    assert losses[-1] < losses[0] - 0.2
    assert all(b.attn.wq.weight.grad is None and b.attn.wk.weight.grad is None for b in model.blocks)
    m = run.metrics()
    assert m["attention_requests"] == 4 and m["attention_cache_hits"] == 20 and m["attention_mode"] == "external"
