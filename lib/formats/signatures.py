"""What a document is, from its bytes; names and Content-Type headers are only hints.

``Probe`` is what every format's sniff function looks at: the first bytes, their text when they
are text (None when they look binary), and the hints. The signatures of the built-in formats
follow; the registry (lib/formats/registry.py) tries them in its order.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lib.formats.registry import DocumentFormat

HEAD_BYTES = 8192  # sniffing reads no further
# WHATWG-style: the document must *start* (after whitespace, an XML declaration or comments)
# with an HTML tag; "<html>" inside a script or a string later on does not make it HTML.
_HTML = re.compile(rb"(?:<\?xml[^>]*>|<!--.*?-->|\s)*<(!doctype\s+html|html|head|body|meta|title|div|p|h[1-6]|"
                   rb"a|table|ul|ol|article|main|section|header|nav|script|style|link|iframe|font|b|br|"
                   rb"span|pre|center)[\s/>]", re.I | re.S)
_MD_LINE = re.compile(r"^(#{1,6} \S|```|~~~|[-*+] \S|\d+\. \S|> \S|\|.*\|\s*$|={3,}\s*$|-{3,}\s*$)", re.M)
_MD_INLINE = re.compile(r"\[[^\]\n]+\]\([^)\s]+\)|`[^`\n]+`|\*\*[^*\n]+\*\*")
_BINARY_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\x7fELF",
                 b"\xfd7zXZ", b"RIFF", b"OggS", b"ID3")


@dataclass(frozen=True)
class Probe:
    data: bytes          # the whole document
    head: bytes          # its first HEAD_BYTES
    text: str | None     # the head decoded, or None when it looks binary
    name: str            # the name or URL hint, lower-cased
    content_type: str    # the Content-Type hint, lower-cased, without parameters

    @classmethod
    def of(cls, data: bytes, name_hint: str = "", content_type: str = "") -> "Probe":
        head = data[:HEAD_BYTES]
        text = None if head.startswith(_BINARY_MAGIC) else _decode_head(head)
        return cls(data, head, text, name_hint.lower(), content_type.split(";")[0].strip().lower())

    def named(self, fmt: DocumentFormat) -> bool:
        """The name hint ends in one of the format's extensions."""
        return self.name.endswith(tuple(f".{ext}" for ext in fmt.extensions))

    def declared(self, fmt: DocumentFormat) -> bool:
        """The Content-Type hint is one of the format's."""
        return self.content_type in fmt.content_types


def is_pdf(probe: Probe, fmt: DocumentFormat) -> bool:
    return b"%PDF-" in probe.data[:1024]


def is_html(probe: Probe, fmt: DocumentFormat) -> bool:
    if probe.text is None:
        return False
    if _HTML.match(_strip_bom(probe.head).replace(b"\x00", b"")):
        return True
    return probe.declared(fmt) and "<" in probe.text


def is_markdown(probe: Probe, fmt: DocumentFormat) -> bool:
    if probe.text is None:
        return False
    lines = len(_MD_LINE.findall(probe.text)) + len(_MD_INLINE.findall(probe.text))
    return lines >= 3 or (lines >= 1 and probe.named(fmt)) or probe.declared(fmt)


def _strip_bom(head: bytes) -> bytes:
    for bom in (b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff"):
        if head.startswith(bom):
            return head[len(bom):]
    return head


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
