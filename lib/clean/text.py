"""Bytes to clean unicode: charset decoding with sniffing, mojibake repair, unicode
normalisation, ligatures, control characters and whitespace (left alone inside code)."""
from __future__ import annotations

import codecs
import re
import unicodedata
from collections import Counter
from typing import Iterator

# The counters this module adds to a document's stats (lib/clean/counters.py gathers them).
COUNTERS = ("charset_sniffed", "charset_unknown_declared", "control_chars_stripped",
            "ligatures_expanded", "lines_unwrapped", "mojibake_repaired", "pdf_accents_composed",
            "replacement_chars_removed")
LIGATURES = {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl",
             "\ufb05": "st", "\ufb06": "st", "\u0132": "IJ", "\u0133": "ij", "\u0152": "OE",
             "\u0153": "oe"}
_LIGATURE_RE = re.compile("[\ufb00-\ufb06]")
_SPACES = re.compile("[\u00a0\u1680\u2000-\u200a\u202f\u205f\u3000]")
_INVISIBLE = re.compile("[\u00ad\u200b-\u200d\u2060\ufeff]")
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ufffe\uffff]")
# UTF-8 read as cp1252/latin-1: a lead byte (Â-ß 2-byte, à-ï 3-byte) then continuation bytes.
_CONT = "\x80-\xbf\u20ac\u201a\u0192\u201e\u2026\u2020\u2021\u02c6\u2030\u0160\u2039\u0152\u017d" \
        "\u2018\u2019\u201c\u201d\u2022\u2013\u2014\u02dc\u2122\u0161\u203a\u0153\u017e\u0178"
_MOJIBAKE = re.compile(f"(?:[\u00c2-\u00df][{_CONT}]|[\u00e0-\u00ef][{_CONT}]{{2}})+")
_MOJIBAKE_HINT = re.compile("[\u00c2-\u00ef][\x80-\xbf\u0152-\u2122]")
_FENCE = re.compile(r"^\s*(```|~~~)")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_LEGACY = {"iso-8859-1": "cp1252", "latin-1": "cp1252", "latin1": "cp1252", "ascii": "cp1252",
           "us-ascii": "cp1252", "iso8859-1": "cp1252", "l1": "cp1252"}


def declared_charset(data: bytes, content_type: str | None = None) -> str | None:
    """The charset named by the Content-Type header, else by a <meta> tag, else None."""
    for source in (content_type or "", ):
        m = re.search(r"charset\s*=\s*[\"']?([A-Za-z0-9_\-:.]+)", source, re.I)
        if m:
            return m.group(1).lower()
    m = _META_CHARSET.search(data[:4096])
    return m.group(1).decode("ascii", "replace").lower() if m else None


def decode(data: bytes, declared: str | None, stats: Counter) -> str:
    """Honour a BOM, then the declared charset, then UTF-8, then cp1252; never raises."""
    for bom, enc in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                     (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return data.decode(enc, errors="replace")
    order = []
    if declared:
        name = _LEGACY.get(declared, declared)
        try:
            order.append(codecs.lookup(name).name)
        except LookupError:
            stats["charset_unknown_declared"] += 1
    order += [e for e in ("utf-8", "cp1252") if e not in order]
    for i, enc in enumerate(order):
        try:
            text = data.decode(enc)
        except UnicodeDecodeError:
            continue
        if i > 0 or (not declared and enc != "utf-8"):
            stats["charset_sniffed"] += 1
        return text
    stats["charset_sniffed"] += 1
    return data.decode("latin-1")


def _as_bytes(s: str) -> bytes:
    out = bytearray()
    for ch in s:
        try:
            out += ch.encode("cp1252")
        except UnicodeEncodeError:
            out.append(ord(ch))  # latin-1 control range, undefined in cp1252
    return bytes(out)


def _repair(m: re.Match) -> str:
    s = m.group(0)
    try:
        return _as_bytes(s).decode("utf-8")
    except (UnicodeDecodeError, ValueError):
        return s


def fix_mojibake(text: str) -> str:
    """Undo UTF-8 bytes that were decoded as cp1252 or latin-1 ("CafÃ©" -> "Café")."""
    if not _MOJIBAKE_HINT.search(text):
        return text
    return _MOJIBAKE.sub(_repair, text)


def normalise(text: str, stats: Counter) -> str:
    """Unicode NFC, mojibake repaired, ligatures expanded, controls dropped, whitespace tidied."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    fixed = fix_mojibake(text)
    if fixed != text:
        stats["mojibake_repaired"] += 1
        text = fixed
    text = unicodedata.normalize("NFC", text)
    if _LIGATURE_RE.search(text):
        stats["ligatures_expanded"] += 1
        text = _LIGATURE_RE.sub(lambda m: LIGATURES[m.group(0)], text)
    text = _SPACES.sub(" ", text)
    text = _INVISIBLE.sub("", text)
    if "\ufffd" in text:  # a byte or glyph that had no character: nothing to keep
        stats["replacement_chars_removed"] += text.count("\ufffd")
        text = text.replace("\ufffd", "")
    stripped = _CONTROL.sub("", text)
    if len(stripped) != len(text):
        stats["control_chars_stripped"] += 1
    return tidy_whitespace(stripped)


# TeX's OT1 fonts draw an accent as its own glyph before the letter ("H`an Thˆe Th`anh"): as
# spacing accents they read as noise; as combining marks they compose to "Hàn Thê Thành".
_SPACING_ACCENT = {"`": "\u0300", "\u00b4": "\u0301", "\u02c6": "\u0302", "^": "\u0302",
                   "\u02dc": "\u0303", "~": "\u0303", "\u00a8": "\u0308", "\u00af": "\u0304",
                   "\u02d8": "\u0306", "\u02d9": "\u0307", "\u02da": "\u030a", "\u00b8": "\u0327",
                   "\u02c7": "\u030c"}
_ACCENT_LETTER = re.compile("(?<=[A-Za-z])([`\u00b4\u02c6\u02dc\u00a8\u00af\u02d8\u02d9\u02da\u02c7])"
                            "([aeiouyncAEIOUYNCszSZrR])")


def compose_accents(text: str, stats: Counter) -> str:
    """Spacing accent + letter inside a word (PDF text from TeX) -> the accented letter."""
    def fix(m: re.Match) -> str:
        composed = unicodedata.normalize("NFC", m.group(2) + _SPACING_ACCENT[m.group(1)])
        if len(composed) != 1:
            return m.group(0)
        stats["pdf_accents_composed"] += 1
        return composed
    return _ACCENT_LETTER.sub(fix, text)


def fenced_lines(text: str) -> Iterator[tuple[str, bool | None]]:
    """Each line of ``text`` with where it stands: None for a fence line (``` or ~~~), True inside
    fenced code, False in prose. The one place that tracks fences line by line."""
    in_code = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_code = not in_code
            yield line, None
        else:
            yield line, in_code


def tidy_whitespace(text: str) -> str:
    """Collapse runs of spaces and blank lines outside fenced code; inside, only trim line ends."""
    out: list[str] = []
    for line, in_code in fenced_lines(text):
        if in_code is None:
            out.append(line.strip())
            continue
        if in_code:
            out.append(line.rstrip())
            continue
        body = line.expandtabs(4)
        indent = len(body) - len(body.lstrip(" "))
        words = body.split()
        if not words:
            if out and out[-1] != "":
                out.append("")
            continue
        out.append(" " * indent + " ".join(words))
    if in_code:  # an unclosed fence: close it so later stages see balanced code
        while out and not out[-1]:
            out.pop()
        out.append("```")
    return "\n".join(out).strip("\n")


def prose(text: str) -> str:
    """The text outside fenced code blocks (for quality and language statistics)."""
    out, in_code = [], False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_code = not in_code
        elif not in_code:
            out.append(line)
    return "\n".join(out)


_ITEM = re.compile(r"^\s*([-*+\u2022]\s|\d+[.)]\s)")
_NO_JOIN = re.compile(r"^\s*(#{1,6}\s|\||>|```|~~~|[-=]{3,}\s*$)")


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def unwrap(text: str, stats: Counter) -> str:
    """Join hard-wrapped prose lines into one line per paragraph or list item (as HTML and PDF
    text come out); headings, tables, quotes, fenced and indented code keep their lines."""
    out: list[str] = []
    in_code = False
    for line in text.split("\n"):
        if _FENCE.match(line):
            in_code = not in_code
            out.append(line)
            continue
        prev = out[-1] if out else ""
        joinable_prev = (not in_code and prev.strip() and not _NO_JOIN.match(prev)
                         and (_indent(prev) < 4 or _ITEM.match(prev)))
        continuation = _indent(line) < 4 or (_ITEM.match(prev) and _indent(line) > _indent(prev))
        if (joinable_prev and line.strip() and continuation and not _ITEM.match(line)
                and not _NO_JOIN.match(line)):
            out[-1] = prev + " " + line.strip()
            stats["lines_unwrapped"] += 1
        else:
            out.append(line)
    return "\n".join(out)
