"""The two types the format registry is made of: ``DocumentFormat`` (one record per format) and
``Probe`` (what a format's sniff function looks at: the first bytes, their text when they are
text, and the name and Content-Type hints)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

HEAD_BYTES = 8192  # sniffing reads no further
_BINARY_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\x7fELF",
                 b"\xfd7zXZ", b"RIFF", b"OggS", b"ID3")


@dataclass(frozen=True)
class DocumentFormat:
    name: str                       # the manifest's "type"
    extensions: tuple[str, ...]     # name hints; the first is the stored file's suffix
    content_types: tuple[str, ...]  # Content-Type hints; the first is recorded when a source gave none
    # (probe, this format) -> is it one? Tried in table order; None: the fallback for any text
    # no other format claims (one format, "text").
    sniff: Callable[[Probe, DocumentFormat], bool] | None
    extract: str                    # "module:function": (data, content_type, CleanParams, stats) -> Extracted
    post: tuple[str, ...] = ()      # "module:function"s: (text, CleanParams, stats) -> text, after normalising
    reasons: tuple[str, ...] = ()   # what the extractor can reject a document for, beyond the common ones


@dataclass(frozen=True)
class Probe:
    data: bytes          # the whole document
    head: bytes          # its first HEAD_BYTES
    text: str | None     # the head decoded, or None when it looks binary
    name: str            # the name or URL hint, lower-cased
    content_type: str    # the Content-Type hint, lower-cased, without parameters

    @classmethod
    def of(cls, data: bytes, name_hint: str = "", content_type: str = "") -> Probe:
        head = data[:HEAD_BYTES]
        text = None if head.startswith(_BINARY_MAGIC) else _decode_head(head)
        return cls(data, head, text, name_hint.lower(), content_type.split(";")[0].strip().lower())

    def named(self, fmt: DocumentFormat) -> bool:
        """The name hint ends in one of the format's extensions."""
        return self.name.endswith(tuple(f".{ext}" for ext in fmt.extensions))

    def declared(self, fmt: DocumentFormat) -> bool:
        """The Content-Type hint is one of the format's."""
        return self.content_type in fmt.content_types


def _decode_head(head: bytes) -> str | None:
    """Decode a prefix as text, or None when it looks binary (NULs, many control bytes)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return head.decode("utf-16", errors="replace")
    if b"\x00" in head:
        return None
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13, 27))
    if controls > len(head) * 0.05:
        return None
    try:
        return head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start >= len(head) - 4:  # a multi-byte character cut by the prefix
            return head[: err.start].decode("utf-8")
        return head.decode("cp1252", errors="replace")
