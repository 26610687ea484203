"""A polite HTTP(S) client on http.client: robots.txt, per-host rate limit, retries with backoff,
bounded redirects, a byte cap, connect/read timeouts and conditional re-fetch.

Nothing here raises for a bad page: every outcome is a FetchResult with ok/reason.
"""
from __future__ import annotations

import http.client
import socket
import ssl
import threading
import time
import urllib.robotparser
import zlib
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit, urlunsplit

from lib.core.retry import backoff_s, retry_after_s
from lib.scrape.cache import HttpCache
from lib.scrape.config import ScrapeParams

REDIRECTS = (301, 302, 303, 307, 308)


@dataclass
class FetchResult:
    url: str                     # requested URL
    final_url: str | None = None
    data: bytes = b""
    content_type: str = ""
    reason: str | None = None    # None when ok
    not_modified: bool = False

    @property
    def ok(self) -> bool:
        return self.reason is None


class _Fail(Exception):
    def __init__(self, reason: str, retry: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason, self.retry, self.retry_after = reason, retry, retry_after


def normalise_url(url: str) -> str:
    """Drop the fragment and lowercase scheme and host, so one page has one name."""
    parts = urlsplit(url.strip())
    path = parts.path or "/"
    return urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, parts.query, ""))


class Fetcher:
    def __init__(self, params: ScrapeParams, cache: HttpCache | None = None):
        self.p = params
        self.cache = cache
        self._lock = threading.Lock()
        self._host_locks: dict[str, threading.Lock] = {}
        self._next_time: dict[str, float] = {}
        self._robots: dict[str, urllib.robotparser.RobotFileParser | str] = {}
        self._ssl = ssl.create_default_context()

    # -- public -------------------------------------------------------------------------------
    def fetch(self, url: str) -> FetchResult:
        url = normalise_url(url)
        seen = {url}
        current = url
        for _ in range(self.p.max_redirects + 1):
            parts = urlsplit(current)
            if parts.scheme not in ("http", "https"):
                return FetchResult(url, current, reason="bad_scheme")
            blocked = self._robots_block(current)
            if blocked:
                return FetchResult(url, current, reason=blocked)
            try:
                status, headers, data = self._get_with_retries(current, conditional=True)
            except _Fail as fail:
                return FetchResult(url, current, reason=fail.reason)
            if status in REDIRECTS:
                location = headers.get("location")
                if not location:
                    return FetchResult(url, current, reason="http_redirect_without_location")
                current = normalise_url(urljoin(current, location))
                if current in seen:
                    return FetchResult(url, current, reason="redirect_loop")
                seen.add(current)
                continue
            if status == 304 and self.cache is not None:
                hit = self.cache.body(current)
                if hit is not None:
                    data, ctype = hit
                    return FetchResult(url, current, data, ctype, not_modified=True)
                status, headers, data = self._get_with_retries(current, conditional=False)
            if status != 200:
                return FetchResult(url, current, reason=f"http_{status}")
            ctype = headers.get("content-type", "")
            if self.cache is not None:
                self.cache.store(current, headers, data, ctype)
            return FetchResult(url, current, data, ctype)
        return FetchResult(url, current, reason="too_many_redirects")

    # -- robots ---------------------------------------------------------------------------------
    def _robots_block(self, url: str) -> str | None:
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._lock:
            host_lock = self._host_locks.setdefault("robots:" + origin, threading.Lock())
        with host_lock:
            if origin not in self._robots:
                self._robots[origin] = self._load_robots(origin)
        robots = self._robots[origin]
        if isinstance(robots, str):
            return robots
        if not robots.can_fetch(self.p.user_agent, url):
            return "robots_disallowed"
        return None

    def _load_robots(self, origin: str) -> urllib.robotparser.RobotFileParser | str:
        rp = urllib.robotparser.RobotFileParser(origin + "/robots.txt")
        url = origin + "/robots.txt"
        try:
            for _ in range(self.p.max_redirects + 1):  # e.g. http -> https
                status, headers, data = self._get_with_retries(url, conditional=False)
                if status not in REDIRECTS or not headers.get("location"):
                    break
                url = urljoin(url, headers["location"])
                if urlsplit(url).scheme not in ("http", "https"):
                    return "robots_unreachable"
        except _Fail as fail:  # the host itself is down: say so (timeout, connection_error, ...)
            return fail.reason if not fail.reason.startswith("http_") else "robots_unreachable"
        if status in (401, 403):
            rp.disallow_all = True
        elif status == 200:
            rp.parse(data.decode("utf-8", errors="replace").splitlines())
        elif status >= 500:
            return "robots_unreachable"
        else:  # 404 and friends: no rules, everything allowed
            rp.allow_all = True
        delay = rp.crawl_delay(self.p.user_agent) if status == 200 else None
        if delay:
            self._next_time.setdefault("delay:" + urlsplit(origin).netloc, float(delay))
        return rp

    # -- one request ----------------------------------------------------------------------------
    def _get_with_retries(self, url: str, conditional: bool) -> tuple[int, dict[str, str], bytes]:
        attempt = 0
        while True:
            try:
                status, headers, data = self._get(url, conditional)
                if status == 429 or 500 <= status < 600:
                    raise _Fail(f"http_{status}", retry=True, retry_after=retry_after_s(headers.get("retry-after")))
                return status, headers, data
            except _Fail as fail:
                if not fail.retry or attempt >= self.p.retries:
                    raise
                time.sleep(backoff_s(attempt, self.p.backoff_s, self.p.max_backoff_s, fail.retry_after))
                attempt += 1

    def _get(self, url: str, conditional: bool) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(url)
        self._wait_turn(parts.netloc)
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        kwargs = {"context": self._ssl} if parts.scheme == "https" else {}
        conn = cls(parts.hostname, parts.port, timeout=self.p.connect_timeout_s, **kwargs)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = {"User-Agent": self.p.user_agent, "Accept-Encoding": "identity", "Accept": "*/*"}
        if conditional and self.cache is not None:
            headers.update(self.cache.validators(url))
        try:
            conn.connect()
            conn.sock.settimeout(self.p.timeout_s)  # from here on: the read timeout
            conn.request("GET", target, headers=headers)
            resp = conn.getresponse()
            head = {k.lower(): v for k, v in resp.getheaders()}
            if resp.status in REDIRECTS or resp.status == 304 or resp.status >= 400:
                return resp.status, head, b""
            length = head.get("content-length", "")
            if length.isdigit() and int(length) > self.p.max_bytes:
                raise _Fail("too_large")
            data = resp.read(self.p.max_bytes + 1)
            if head.get("content-encoding", "identity").lower() in ("gzip", "x-gzip", "deflate"):
                data = self._inflate(data)  # sent compressed although we asked for identity
            if len(data) > self.p.max_bytes:
                raise _Fail("too_large")
            return resp.status, head, data
        except (socket.timeout, TimeoutError):
            raise _Fail("timeout", retry=True) from None
        except ssl.SSLError:
            raise _Fail("tls_error") from None
        except (ConnectionError, http.client.HTTPException, OSError) as err:
            reason = "dns_error" if isinstance(err, socket.gaierror) else "connection_error"
            raise _Fail(reason, retry=reason == "connection_error") from None
        finally:
            conn.close()

    def _inflate(self, data: bytes) -> bytes:
        try:  # wbits 47: gzip or zlib header, detected; output capped like the raw body
            return zlib.decompressobj(47).decompress(data, self.p.max_bytes + 1)
        except zlib.error:
            raise _Fail("bad_encoding") from None

    def _wait_turn(self, host: str) -> None:
        """Per-host rate limit: requests to one host start at least rate_limit_s apart."""
        with self._lock:
            gap = max(self.p.rate_limit_s, self._next_time.get("delay:" + host, 0.0))
            now = time.monotonic()
            start = max(now, self._next_time.get(host, 0.0))
            self._next_time[host] = start + gap
        if start > now:
            time.sleep(start - now)

