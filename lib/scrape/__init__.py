"""Acquisition: local files, folders, globs, http(s) URLs, same-site crawls and JSONL/Parquet
datasets into a content-addressed raw store with a deterministic manifest."""
from lib.scrape.config import ScrapeParams, Source
from lib.scrape.run import scrape

__all__ = ["ScrapeParams", "Source", "scrape"]
