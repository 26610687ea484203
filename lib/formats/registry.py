"""The document formats the pipeline reads: one ``DocumentFormat`` record each, in ``FORMATS``.

Scrape sniffs a document's format, stores it under the format's first extension and records its
content type; clean extracts it with the format's extractor, normalises the text and runs the
format's post-processing. A new format is one record here (plus its sniff function and
extractor); nothing else lists formats. (The crawler follows links in "html" documents only.)

The extractor and post-processing steps are named as ``"module:function"`` and imported when
clean first uses them, so the scrape stage (which only sniffs) does not depend on the extraction
code: an edit to the PDF layout code reruns clean, not the web scrape.
"""
from __future__ import annotations

from importlib import import_module
from typing import Callable

from lib.formats.format import DocumentFormat, Probe
from lib.formats.signatures import is_html, is_markdown, is_pdf

UNKNOWN = "unknown"  # the type of a document no format claims (recorded, never stored)
UNKNOWN_CONTENT_TYPE = "application/octet-stream"

FORMATS: dict[str, DocumentFormat] = {f.name: f for f in (
    DocumentFormat("pdf", ("pdf",), ("application/pdf",), is_pdf, "lib.clean.extract:pdf",
                   post=("lib.clean.extract:accents",),
                   reasons=("pdf_corrupt", "pdf_encrypted", "pdf_scanned")),
    DocumentFormat("html", ("html",), ("text/html", "application/xhtml+xml"), is_html,
                   "lib.clean.extract:html"),
    DocumentFormat("markdown", ("md", "markdown", "rst"), ("text/markdown",), is_markdown,
                   "lib.clean.extract:plain_text", post=("lib.clean.extract:unwrap_lines",)),
    DocumentFormat("text", ("txt",), ("text/plain",), None, "lib.clean.extract:plain_text",
                   post=("lib.clean.extract:unwrap_lines",)),
)}


def sniff(data: bytes, name_hint: str = "", content_type: str = "") -> str:
    """The name of the format ``data`` is in, or UNKNOWN (empty, binary, or claimed by none)."""
    if not data:
        return UNKNOWN
    probe = Probe.of(data, name_hint, content_type)
    for fmt in FORMATS.values():
        if fmt.sniff is not None and fmt.sniff(probe, fmt):
            return fmt.name
    fallback = [f.name for f in FORMATS.values() if f.sniff is None]
    return fallback[0] if probe.text is not None and fallback else UNKNOWN


def default_content_type(name: str) -> str:
    """What to record as a document's content type when its source gave none."""
    return FORMATS[name].content_types[0] if name in FORMATS else UNKNOWN_CONTENT_TYPE


def load(ref: str) -> Callable:
    """The function a ``"module:function"`` reference names."""
    module, _, function = ref.partition(":")
    return getattr(import_module(module), function)


def module_of(ref: str) -> str:
    return ref.partition(":")[0]
