"""Clean: decoding, mojibake, ligatures, control characters, whitespace outside code."""
from __future__ import annotations

from collections import Counter

from lib.clean.text import declared_charset, decode, fix_mojibake, normalise, prose, unwrap


def test_declared_charset_from_header_then_meta():
    page = b'<html><head><meta charset="windows-1252"></head></html>'
    assert declared_charset(page, "text/html; charset=UTF-8") == "utf-8"
    assert declared_charset(page, "text/html") == "windows-1252"
    assert declared_charset(b'<meta http-equiv="Content-Type" content="text/html; charset=iso-8859-1">') \
        == "iso-8859-1"
    assert declared_charset(b"<html></html>") is None


def test_decode_honours_declared_and_sniffs_when_wrong_or_missing():
    stats = Counter()
    cp = "caf\u00e9 \u2013 na\u00efve \u201cquotes\u201d".encode("cp1252")
    assert decode(cp, "windows-1252", stats) == "caf\u00e9 \u2013 na\u00efve \u201cquotes\u201d"
    assert stats["charset_sniffed"] == 0
    assert decode(cp, "utf-8", stats) == "caf\u00e9 \u2013 na\u00efve \u201cquotes\u201d"  # wrong label
    assert decode(cp, None, stats).startswith("caf\u00e9")
    assert stats["charset_sniffed"] == 2
    assert decode("\u00e9".encode("latin-1"), "iso-8859-1", Counter()) == "\u00e9"
    assert decode("x\u00e9".encode("utf-8"), None, Counter()) == "x\u00e9"
    assert decode(b"\xef\xbb\xbfbom", None, Counter()) == "bom"
    assert decode("utf16".encode("utf-16"), None, Counter()) == "utf16"
    assert isinstance(decode(bytes(range(256)), "no-such-charset", Counter()), str)


def test_mojibake_repaired_but_clean_text_untouched():
    assert fix_mojibake("Caf\u00c3\u00a9 and na\u00c3\u00afve \u00e2\u20ac\u201c done") == \
        "Caf\u00e9 and na\u00efve \u2013 done"
    assert fix_mojibake("It\u00e2\u20ac\u2122s") == "It\u2019s"
    for ok in ("Caf\u00e9 cr\u00e8me", "\u00c9cole \u00e0 Paris", "plain ascii"):
        assert fix_mojibake(ok) == ok


def test_normalise_rules_and_stats():
    stats = Counter()
    raw = ("\ufb01rst e\ufb03cient\u00a0 text\x00\x07 with  spaces\r\n\r\n\r\n\u200bnext "
           "Caf\u00c3\u00a9\n\n```c\nint main() {\n    return  0;\t\n}\n```\n")
    out = normalise(raw, stats)
    assert out == ("first efficient text with spaces\n\nnext Caf\u00e9\n\n```c\nint main() {\n"
                   "    return  0;\n}\n```")
    assert stats == Counter(ligatures_expanded=1, control_chars_stripped=1, mojibake_repaired=1)


def test_unclosed_fence_is_closed_and_prose_skips_code():
    text = normalise("intro words\n```\n  code   kept\n", Counter())
    assert text == "intro words\n```\n  code   kept\n```"
    assert prose(text) == "intro words"


def test_unwrap_joins_prose_and_list_items_but_keeps_structure():
    text = ("# A heading\nWrapped prose that\ncontinues here.\n\n- an item that\n  wraps\n- next item\n"
            "\n| a | b |\n| c | d |\n\n```\nint x;\nint y;\n```\n\n    indented code\n    more code\n"
            "\n> quoted\n> lines")
    stats = Counter()
    assert unwrap(text, stats) == (
        "# A heading\nWrapped prose that continues here.\n\n- an item that wraps\n- next item\n"
        "\n| a | b |\n| c | d |\n\n```\nint x;\nint y;\n```\n\n    indented code\n    more code\n"
        "\n> quoted\n> lines")
    assert stats["lines_unwrapped"] == 2
