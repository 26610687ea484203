"""Document type from the bytes themselves; names and Content-Type headers are only hints."""
from __future__ import annotations

import re

EXTENSIONS = {"html": "html", "pdf": "pdf", "text": "txt", "markdown": "md"}
CONTENT_TYPES = {"html": "text/html", "pdf": "application/pdf", "text": "text/plain",
                 "markdown": "text/markdown", "unknown": "application/octet-stream"}

# WHATWG-style: the document must *start* (after whitespace, an XML declaration or comments)
# with an HTML tag; "<html>" inside a script or a string later on does not make it HTML.
_HTML = re.compile(rb"(?:<\?xml[^>]*>|<!--.*?-->|\s)*<(!doctype\s+html|html|head|body|meta|title|div|p|h[1-6]|"
                   rb"a|table|ul|ol|article|main|section|header|nav|script|style|link|iframe|font|b|br|"
                   rb"span|pre|center)[\s/>]", re.I | re.S)
_MD_LINE = re.compile(r"^(#{1,6} \S|```|~~~|[-*+] \S|\d+\. \S|> \S|\|.*\|\s*$|={3,}\s*$|-{3,}\s*$)", re.M)
_MD_INLINE = re.compile(r"\[[^\]\n]+\]\([^)\s]+\)|`[^`\n]+`|\*\*[^*\n]+\*\*")
_BINARY_MAGIC = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"PK\x03\x04", b"\x1f\x8b", b"BZh", b"\x7fELF",
                 b"\xfd7zXZ", b"RIFF", b"OggS", b"ID3")


def sniff(data: bytes, name_hint: str = "", content_type: str = "") -> str:
    """Return one of TYPES. PDF and HTML by signature; text vs binary by byte statistics."""
    head = data[:8192]
    if not head:
        return "unknown"
    if b"%PDF-" in data[:1024]:
        return "pdf"
    if head.startswith(_BINARY_MAGIC):
        return "unknown"
    text = _decode_head(head)
    if text is None:
        return "unknown"
    if _HTML.match(_strip_bom(head).replace(b"\x00", b"")):
        return "html"
    ctype = content_type.split(";")[0].strip().lower()
    if ctype in ("text/html", "application/xhtml+xml") and "<" in text:
        return "html"
    lines = len(_MD_LINE.findall(text)) + len(_MD_INLINE.findall(text))
    hint = name_hint.lower()
    if lines >= 3 or (lines >= 1 and hint.endswith((".md", ".markdown", ".rst"))) or ctype == "text/markdown":
        return "markdown"
    return "text"


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
