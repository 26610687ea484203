"""Where external attention weights come from: one small interface, two providers.

``provider.scores(token_ids, texts)`` returns a (T, T) float32 matrix of non-negative pairwise
scores, row i over the tokens j <= i (the upper triangle is ignored). The model side normalises
the rows and masks the future, so a provider only has to say how much each token should attend
to each earlier one. ``provider.name`` and ``provider.model`` key the score cache.

* ``HttpProvider``: any OpenAI-compatible ``/chat/completions`` endpoint. Base URL, model name and
  API key come from environment variables named in params (never their values). It asks for strict
  JSON ``{"scores": [[...], ...]}``, validates the reply, retries 429 / 5xx / timeouts / malformed
  replies with backoff, and counts every attempt against ``max_requests``. The key is sent only
  in the Authorization header, never follows a redirect, and is scrubbed from every message.
* ``LocalProvider``: head- and layer-averaged causal attention probabilities of one of our own
  trained models, so the mode runs offline.
"""
from __future__ import annotations

import hashlib
import http.client
import json
import math
import os
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Mapping, Protocol, Sequence

import numpy as np
import torch

from lib.attention.params import AttentionParams
from lib.core.errors import UserError
from lib.core.retry import backoff_s, retry_after_s


class AttentionError(UserError):
    """A mistake to fix (configuration, credentials, request cap): never replaced by a fallback."""


class ProviderFailure(AttentionError):
    """The provider gave no usable reply after its retries; ``on_bad_reply: uniform`` may fall back."""


class BadReply(ValueError):
    """One reply that does not hold a valid score matrix (retried, then a ProviderFailure)."""


class Provider(Protocol):
    name: str
    model: str
    requests: int

    def scores(self, token_ids: Sequence[int], texts: Sequence[str]) -> np.ndarray: ...


def validate_matrix(scores, n: int, upper: float | None = None) -> np.ndarray:
    """A (n, n) float32 lower-triangular matrix of finite, non-negative scores, or BadReply."""
    m = np.asarray(scores, dtype=np.float64)
    if m.shape != (n, n):
        raise BadReply(f"expected a {n}x{n} score matrix, got shape {m.shape}")
    m = np.tril(m)
    if not np.isfinite(m).all():
        raise BadReply("scores contain NaN or infinity")
    top = math.inf if upper is None else upper
    bad = (m < 0) | (m > top)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise BadReply(f"score at row {i}, column {j} is {m[i, j]:g}, outside [0, {top:g}]")
    return m.astype(np.float32)


# ---- HTTP ------------------------------------------------------------------------------------

SYSTEM_PROMPT = ("You score attention weights for a language-model experiment. You reply with one JSON "
                 "object and nothing else: no prose, no code fences.")


def build_prompt(texts: Sequence[str]) -> str:
    n = len(texts)
    tokens = "\n".join(f"{i}: {json.dumps(t, ensure_ascii=False)}" for i, t in enumerate(texts))
    return (f"Here are the {n} tokens of a text, numbered from 0, each as a JSON string.\n"
            f"For every token i, score how much token i should attend to each token j with j <= i "
            f"(itself and the tokens before it), from 0 (ignore) to 1 (attend strongly).\n"
            f'Reply with exactly {{"scores": [[...], ...]}}: {n} rows, row i holding i + 1 numbers, '
            f"the scores for j = 0, 1, ..., i.\nTokens:\n{tokens}")


def parse_reply(body: bytes, n: int) -> np.ndarray:
    """The score matrix in a chat-completions response body, or BadReply saying what is wrong."""
    try:
        content = json.loads(body)["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError):
        raise BadReply("the response is not a chat completion (no choices[0].message.content)") from None
    if not isinstance(content, str):
        raise BadReply("choices[0].message.content is not a string")
    text = content.strip()
    if text.startswith("```"):  # tolerate a fenced block despite the instructions
        text = text.strip("`").removeprefix("json").strip()
    try:
        obj = json.loads(text)
    except ValueError as err:
        raise BadReply(f"the message is not valid JSON ({err.msg} at character {err.pos})") from None
    rows = obj.get("scores") if isinstance(obj, dict) else None
    if not isinstance(rows, list) or len(rows) != n:
        got = f"{len(rows)} rows" if isinstance(rows, list) else "no 'scores' list"
        raise BadReply(f'expected {{"scores": [...]}} with {n} rows, got {got}')
    m = np.zeros((n, n))
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) not in (i + 1, n):
            raise BadReply(f"row {i} must be a list of {i + 1} numbers")
        for j, value in enumerate(row[:i + 1]):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise BadReply(f"row {i}, column {j} is not a number: {str(value)[:40]!r}")
            m[i, j] = value
    return validate_matrix(m, n, upper=1.0)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A redirect would re-send the Authorization header to another address: refuse it."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class HttpProvider:
    name = "http"

    def __init__(self, params: AttentionParams, env: Mapping[str, str] | None = None, sleep=time.sleep):
        env = os.environ if env is None else env
        names = params.http
        base = env.get(names.base_url_env, "").strip()
        model = env.get(names.model_env, "").strip()
        for var, value in ((names.base_url_env, base), (names.model_env, model)):
            if not value:
                raise AttentionError(f"attention.provider is http but the environment variable {var} is not set; "
                                     f"export it (see README 'External attention')")
        if not base.startswith(("http://", "https://")):
            raise AttentionError(f"${names.base_url_env} must start with http:// or https://")
        self.url = base.rstrip("/") + "/chat/completions"
        self.model = model
        self._key = env.get(names.api_key_env, "") or None
        self._where = f"the endpoint in ${names.base_url_env}"
        self._key_var = names.api_key_env
        self.params = params
        self.requests = 0
        self._sleep = sleep
        self._opener = urllib.request.build_opener(_NoRedirect)

    def __repr__(self) -> str:  # never the key
        return f"HttpProvider(model={self.model!r})"

    def redact(self, text: str) -> str:
        return text.replace(self._key, "[redacted]") if self._key else text

    def scores(self, token_ids: Sequence[int], texts: Sequence[str]) -> np.ndarray:
        n = len(token_ids)
        body = json.dumps({"model": self.model, "temperature": 0, "messages": [
            {"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": build_prompt(texts)}]}).encode()
        p = self.params
        problem = ""
        for attempt in range(p.retries + 1):
            if p.max_requests is not None and self.requests >= p.max_requests:
                raise AttentionError(f"attention.max_requests ({p.max_requests}) reached: this run may send no more "
                                     f"requests; raise it (null: no cap), or rerun to use what is cached")
            self.requests += 1
            wait = None
            try:
                reply = self._post(body)
                return parse_reply(reply, n)
            except urllib.error.HTTPError as err:
                snippet = self.redact(_read_snippet(err))
                if err.code == 429 or err.code >= 500:
                    problem = f"HTTP {err.code}" + (f": {snippet}" if snippet else "")
                    wait = retry_after_s(err.headers.get("Retry-After") if err.headers is not None else None)
                else:
                    hint = f"; check ${self._key_var}" if err.code in (401, 403) else ""
                    raise AttentionError(f"attention provider: HTTP {err.code} from {self._where}{hint}"
                                         + (f": {snippet}" if snippet else "")) from None
            except BadReply as err:
                problem = f"malformed reply: {self.redact(str(err))}"
            except (TimeoutError, socket.timeout):
                problem = f"no reply within timeout_s={p.timeout_s:g}s"
            except (urllib.error.URLError, http.client.HTTPException, ConnectionError, OSError) as err:
                reason = getattr(err, "reason", err)
                if isinstance(reason, (TimeoutError, socket.timeout)):
                    problem = f"no reply within timeout_s={p.timeout_s:g}s"
                else:
                    problem = f"connection failed ({type(reason).__name__}: {self.redact(str(reason))[:200]})"
            if attempt < p.retries:
                self._sleep(backoff_s(attempt, p.backoff_s, p.max_backoff_s, wait))
        raise ProviderFailure(f"attention provider: {self._where} gave no usable scores for a {n}-token sequence "
                              f"after {p.retries + 1} attempts (last: {problem}); fix the endpoint, raise "
                              f"attention.retries, or set attention.on_bad_reply: uniform")

    def _post(self, body: bytes) -> bytes:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        with self._opener.open(request, timeout=self.params.timeout_s) as response:
            return response.read()


def _read_snippet(err: urllib.error.HTTPError) -> str:
    try:
        return err.read(300).decode("utf-8", "replace").strip().replace("\n", " ")[:200]
    except Exception:  # the body is a courtesy
        return ""


# ---- local -----------------------------------------------------------------------------------

@torch.no_grad()
def attention_maps(model, idx: torch.Tensor) -> torch.Tensor:
    """(B, T, T) causal attention probabilities of ``model`` (learned attention) for ``idx``,
    averaged over heads and layers: each layer's weights from the input its attention module
    receives (captured by a forward pre-hook), so the model runs unchanged."""
    seen = []

    def hook(module, args, kwargs):
        rope = args[1] if len(args) > 1 else kwargs.get("rope")
        seen.append((module, args[0] if args else kwargs["x"], rope))

    handles = [block.attn.register_forward_pre_hook(hook, with_kwargs=True) for block in model.blocks]
    try:
        model(idx)
    finally:
        for h in handles:
            h.remove()
    B, T = idx.shape
    total = torch.zeros(B, T, T)
    for attn, x, rope in seen:
        total += attn.probabilities(x, rope).mean(dim=1).cpu()
    return total / len(seen)


class LocalProvider:
    name = "local"

    def __init__(self, params: AttentionParams, tokenizer_sha256: str | None = None):
        from lib.model.checkpoint import WEIGHTS_FILE, load_model
        model_dir = Path(params.local_model)
        weights = model_dir / WEIGHTS_FILE
        if not weights.is_file():
            raise AttentionError(f"attention.local_model: {model_dir}: no trained model there ({WEIGHTS_FILE} "
                                 f"missing); train one or point attention.local_model at a model directory")
        self.net = load_model(model_dir, "cpu", tokenizer_sha256).eval()
        digest = hashlib.sha256(weights.read_bytes()).hexdigest()[:16]
        self.model = f"{model_dir.as_posix()}@{digest}"  # retrained weights: new cache entries
        self.requests = 0

    def __repr__(self) -> str:
        return f"LocalProvider(model={self.model!r})"

    def scores(self, token_ids: Sequence[int], texts: Sequence[str]) -> np.ndarray:
        n, limit = len(token_ids), self.net.cfg.max_seq_len
        if n > limit:
            raise AttentionError(f"attention.local_model: sequences of {n} tokens exceed its max_seq_len ({limit})")
        self.requests += 1
        maps = attention_maps(self.net, torch.tensor([list(token_ids)], dtype=torch.long))
        return validate_matrix(maps[0].numpy(), n)


def make_provider(params: AttentionParams, tokenizer=None, env: Mapping[str, str] | None = None) -> Provider:
    if params.provider == "http":
        return HttpProvider(params, env)
    return LocalProvider(params, getattr(tokenizer, "sha256", None))
