"""The built-in formats' sniff functions: what a document is, from its bytes; names and
Content-Type headers are only hints. The registry (lib/formats/registry.py) tries them in its
order, PDF first (a PDF may carry text-like bytes), plain text last."""
from __future__ import annotations

import re

from lib.formats.format import DocumentFormat, Probe

# WHATWG-style: the document must *start* (after whitespace, an XML declaration or comments)
# with an HTML tag; "<html>" inside a script or a string later on does not make it HTML.
_HTML = re.compile(rb"(?:<\?xml[^>]*>|<!--.*?-->|\s)*<(!doctype\s+html|html|head|body|meta|title|div|p|h[1-6]|"
                   rb"a|table|ul|ol|article|main|section|header|nav|script|style|link|iframe|font|b|br|"
                   rb"span|pre|center)[\s/>]", re.I | re.S)
_MD_LINE = re.compile(r"^(#{1,6} \S|```|~~~|[-*+] \S|\d+\. \S|> \S|\|.*\|\s*$|={3,}\s*$|-{3,}\s*$)", re.M)
_MD_INLINE = re.compile(r"\[[^\]\n]+\]\([^)\s]+\)|`[^`\n]+`|\*\*[^*\n]+\*\*")


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
