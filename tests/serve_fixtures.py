"""A server of ours on 127.0.0.1, on a free port, in a thread of the test process: the tiny
model of tests/fixtures_tiny.py behind the real app and uvicorn. Shared by the serve tests."""
from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Iterator

import uvicorn

from lib.serve.app import Served, create_app
from lib.serve.engine import Engine
from tests.fixtures_tiny import tiny_model, tiny_tokenizer

NAME = "tiny"


def tiny_served(api_key: str | None = None, max_body: int = 1 << 16, step_delay: float = 0.0,
                max_seq_len: int = 64) -> Served:
    """``step_delay`` seconds are added to every forward pass, so a test can watch a stream arrive."""
    tok = tiny_tokenizer()
    model = tiny_model(tok.vocab_size, spread=20.0, max_seq_len=max_seq_len)
    if step_delay:
        model.register_forward_pre_hook(lambda *_: time.sleep(step_delay))
    return Served(NAME, Engine(model, max_batch=16), tok, api_key, max_body)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def running(served: Served) -> Iterator[str]:
    """The base URL (http://127.0.0.1:PORT) of ``served`` while the block runs."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(served), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        served.engine.close()
