"""The HTTP front: OpenAI's /v1/chat/completions, /v1/completions and /v1/models, /health, and
the web chat page at / (static/). Routing, auth and limits here; request checking in protocol.py;
generation in engine.py.

Streaming answers are server-sent events as OpenAI sends them: ``data: {chunk}\\n\\n`` per
piece of text, then ``data: [DONE]``. Text is decoded with ``StreamDecoder`` (whole characters
only, stop strings cut). A client that goes away mid-stream cancels its job, which frees the
engine's row at its next step.
"""
from __future__ import annotations

import asyncio
import base64
import hmac
import json
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from lib.infer.generate import StreamDecoder
from lib.serve import protocol
from lib.serve.engine import Engine, Job
from lib.serve.protocol import ApiError, GenRequest
from lib.tokenizer import Tokenizer

STATIC = Path(__file__).parent / "static"
log = logging.getLogger("hpc_lm.serve")


@dataclass
class Served:
    name: str
    engine: Engine
    tokenizer: Tokenizer
    api_key: str | None = None
    max_body: int = 1 << 20   # bytes; a larger request body is refused with 413


class Generation:
    """One request's run through the engine, as text pieces; ``finish`` and counts once done."""

    def __init__(self, served: Served, req: GenRequest):
        self.req, self.tokenizer, self.engine = req, served.tokenizer, served.engine
        self.finish, self.completion_tokens = "", 0

    async def pieces(self) -> AsyncIterator[str]:
        loop, q = asyncio.get_running_loop(), asyncio.Queue()

        def emit(token):  # called on the engine's thread
            try:
                loop.call_soon_threadsafe(q.put_nowait, token)
            except RuntimeError:  # the event loop has closed (server shutting down)
                pass

        r = self.req
        job = Job(r.prompt, r.max_tokens, r.stop_ids, r.sampling, r.seed, emit)
        self.engine.submit(job)
        decoder = StreamDecoder(self.tokenizer, r.stop)
        try:
            while (token := await q.get()) is not None:
                piece = decoder.push(token)
                if piece:
                    yield piece
                if decoder.stopped:
                    break
            if not decoder.stopped and (tail := decoder.flush()):
                yield tail
        finally:
            job.cancel()  # a no-op when it finished; frees the row when the client went away
            self.completion_tokens = job.produced
            self.finish = "stop" if decoder.stopped else (job.finish or "stop")
        if self.finish == "error":
            raise ApiError(500, "generation failed on the server", kind="server_error")

    def usage(self) -> dict:
        p, c = len(self.req.prompt), self.completion_tokens
        return {"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c}


def create_app(served: Served) -> FastAPI:
    app = FastAPI(title="hpc-lm", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.served = served
    _errors(app)
    _guard(app, served)

    @app.get("/health")
    async def health():
        e = served.engine
        return {"status": "ok", "model": served.name, "running": len(e.rows), "waiting": e.pending.qsize()}

    @app.get("/v1/models")
    async def models():
        return {"object": "list", "data": [_model_card(served)]}

    @app.get("/v1/models/{name}")
    async def model(name: str):
        protocol.check_model({"model": name}, served.name)
        return _model_card(served)

    async def complete(request: Request, build, chat: bool):
        """Both completion endpoints: read and check the body, build the request, answer it."""
        body = protocol.parse_json(await _read_body(request, served.max_body))
        protocol.check_model(body, served.name)
        return await _answer(served, build(body, served.tokenizer, served.engine.context), chat=chat)

    @app.post("/v1/chat/completions")
    async def chat(request: Request):
        return await complete(request, protocol.chat_request, chat=True)

    @app.post("/v1/completions")
    async def completions(request: Request):
        return await complete(request, protocol.completion_request, chat=False)

    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _model_card(served: Served) -> dict:
    return {"id": served.name, "object": "model", "created": 0, "owned_by": "hpc-lm",
            "max_model_len": served.engine.context}


async def _answer(served: Served, req: GenRequest, chat: bool) -> Response:
    gen = Generation(served, req)
    ident = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
    head = {"id": ident, "object": "chat.completion" if chat else "text_completion",
            "created": int(time.time()), "model": served.name}
    if req.stream:
        return StreamingResponse(_events(gen, head, chat), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
    text = "".join([piece async for piece in gen.pieces()])
    choice = {"index": 0, "message": {"role": "assistant", "content": text}} if chat else {"index": 0, "text": text}
    return JSONResponse({**head, "choices": [{**choice, "logprobs": None, "finish_reason": gen.finish}],
                         "usage": gen.usage()})


async def _events(gen: Generation, head: dict, chat: bool) -> AsyncIterator[str]:
    head = {**head, "object": "chat.completion.chunk" if chat else "text_completion"}

    def chunk(piece: str | None, finish: str | None = None) -> str:
        if chat:
            delta = {} if piece is None else {"content": piece}
            if piece == "" and finish is None:
                delta = {"role": "assistant", "content": ""}
            choice = {"index": 0, "delta": delta}
        else:
            choice = {"index": 0, "text": piece or ""}
        body = {**head, "choices": [{**choice, "logprobs": None, "finish_reason": finish}]}
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    if chat:
        yield chunk("")  # OpenAI's first chunk carries the role
    try:
        async for piece in gen.pieces():
            yield chunk(piece)
    except ApiError as err:  # headers are sent: the error travels as an event, as OpenAI does
        yield f"data: {json.dumps(err.body())}\n\n"
        return
    yield chunk(None, gen.finish)
    if gen.req.include_usage:
        yield f"data: {json.dumps({**head, 'choices': [], 'usage': gen.usage()})}\n\n"
    yield "data: [DONE]\n\n"


async def _read_body(request: Request, limit: int) -> bytes:
    chunks, size = [], 0
    async for part in request.stream():
        size += len(part)
        if size > limit:
            raise ApiError(413, f"the request body is over {limit} bytes", code="request_too_large")
        chunks.append(part)
    return b"".join(chunks)


def _errors(app: FastAPI) -> None:
    """Every error in OpenAI's shape; never a traceback to the client."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, err: ApiError):
        return JSONResponse(err.body(), status_code=err.status)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException):
        body = ApiError(err.status_code, str(err.detail), code="not_found" if err.status_code == 404 else None).body()
        return JSONResponse(body, status_code=err.status_code, headers=getattr(err, "headers", None))

    @app.exception_handler(Exception)
    async def bug(_: Request, err: Exception):
        log.exception("unexpected error")
        return JSONResponse(ApiError(500, "internal server error", kind="server_error").body(), status_code=500)


def _guard(app: FastAPI, served: Served) -> None:
    """The API key (every path) and the body size limit, before any route runs."""
    app.add_middleware(_Guard, served=served)


class _Guard:
    """Plain ASGI (not BaseHTTPMiddleware), so a streamed answer and its client's disconnect
    pass through untouched."""

    def __init__(self, app, served: Served):
        self.app, self.served = app, served

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        served = self.served
        refusal = None
        if served.api_key and not _authorized(headers.get("authorization", ""), served.api_key):
            # The page's paths ask the browser for the key (any user name, the key as password);
            # the browser then sends it with the page's own API calls.
            page = not scope["path"].startswith("/v1/")
            err = ApiError(401, "Incorrect API key provided: send `Authorization: Bearer KEY`",
                           code="invalid_api_key")
            refusal = JSONResponse(err.body(), status_code=401,
                                   headers={"WWW-Authenticate": 'Basic realm="hpc-lm"'} if page else None)
        else:
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > served.max_body):
                err = ApiError(413, f"the request body is over {served.max_body} bytes", code="request_too_large")
                refusal = JSONResponse(err.body(), status_code=413)
        if refusal is not None:
            return await refusal(scope, receive, send)
        await self.app(scope, receive, send)


def _authorized(header: str, key: str) -> bool:
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode().partition(":")[2]
        except (ValueError, UnicodeDecodeError):
            return False
    elif scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode(), key.encode())
