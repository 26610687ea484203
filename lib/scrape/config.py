"""The `scrape:` section of params.yaml as typed dataclasses (the dataclasses are the schema)."""
from __future__ import annotations

from dataclasses import dataclass, field

from lib.core.params import check

SCHEMES = ("http", "https", "file")


@dataclass
class Source:
    """One entry of `scrape.sources`: exactly one of path, url, crawl or dataset."""

    path: str | None = None        # a file, a folder (recursive) or a glob
    url: str | None = None         # one http(s) or file URL
    crawl: str | None = None       # start URL of a same-site crawl
    dataset: str | None = None     # a JSONL (or Parquet) file or glob, one document per record
    include: list[str] = field(default_factory=list)   # globs on relative paths / full URLs
    exclude: list[str] = field(default_factory=list)
    max_depth: int = 2             # crawl: links followed from the start page
    max_pages: int = 50            # crawl: pages fetched at most
    text_field: str = "text"       # dataset: the field holding the document text
    url_field: str = "url"         # dataset: optional field naming where a record came from

    def __post_init__(self) -> None:
        given = [k for k in ("path", "url", "crawl", "dataset") if getattr(self, k) is not None]
        check(len(given) == 1, "path|url|crawl|dataset", "each source needs exactly one of path, url, crawl, dataset "
              f"(got {', '.join(given) or 'none'})")
        for key in ("url", "crawl"):
            allowed = SCHEMES if key == "url" else ("http", "https")
            value = getattr(self, key)
            if value is not None:
                scheme = value.split(":", 1)[0].lower() if ":" in value else ""
                check(scheme in allowed, key, f"{value!r}: only {', '.join(allowed)} URLs are allowed")
        check(self.max_depth >= 0, "max_depth", "must be >= 0")
        check(self.max_pages >= 1, "max_pages", "must be >= 1")

    @property
    def kind(self) -> str:
        return next(k for k in ("path", "url", "crawl", "dataset") if getattr(self, k) is not None)


@dataclass
class ScrapeParams:
    sources: list[Source]
    user_agent: str = "hpc-lm-scraper/0.1"
    max_bytes: int = 20_000_000       # per document; larger ones are recorded as too_large
    timeout_s: float = 20.0           # read timeout: longest silence while receiving a response
    connect_timeout_s: float = 10.0   # longest wait to open a connection
    workers: int = 4                  # parallel fetches (threads) and, on the engine, file stores
    rate_limit_s: float = 1.0         # minimum seconds between two requests to one host
    retries: int = 3                  # extra attempts on 429, 5xx and connection errors
    backoff_s: float = 1.0            # first retry delay; doubles each attempt (Retry-After wins)
    max_backoff_s: float = 30.0
    max_redirects: int = 5
    cache_dir: str = ".cache/scrape"  # ETag/Last-Modified cache for conditional re-fetch
    out_dir: str = "data/raw"

    def __post_init__(self) -> None:
        check(len(self.sources) > 0, "sources", "list at least one source (path, url, crawl or dataset)")
        check(self.max_bytes > 0, "max_bytes", "must be > 0")
        check(self.timeout_s > 0, "timeout_s", "must be > 0")
        check(self.connect_timeout_s > 0, "connect_timeout_s", "must be > 0")
        check(1 <= self.workers <= 64, "workers", "must be between 1 and 64")
        check(self.rate_limit_s >= 0, "rate_limit_s", "must be >= 0")
        check(self.retries >= 0, "retries", "must be >= 0")
        check(self.backoff_s >= 0 and self.max_backoff_s >= 0, "backoff_s", "must be >= 0")
        check(0 <= self.max_redirects <= 20, "max_redirects", "must be between 0 and 20")
        check(bool(self.user_agent.strip()), "user_agent", "must not be empty")
