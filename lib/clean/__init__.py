"""Cleaning: HTML/PDF/text extraction, normalisation, quality filters and deduplication."""
from lib.clean.config import CleanParams
from lib.clean.pipeline import clean

__all__ = ["CleanParams", "clean"]
