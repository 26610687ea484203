"""Clean: decoding, mojibake, ligatures, control characters, whitespace outside code."""
from __future__ import annotations

from collections import Counter

from lib.clean.lookalikes import count_left, fix_lookalikes
from lib.clean.text import declared_charset, decode, fix_mojibake, normalise, prose, unwrap
from lib.clean.toc import drop_leader_lines, is_toc_page


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


def test_lookalikes_ascii_in_code_typography_kept_in_prose():
    text = ("It\u2019s \u201cfast\u201d: 3 \u2212 2 and/or 1\u20442.\n\n```\n"
            "\u2215\u2215 Kernel definition\nx = a \u2212 b; s = \u2018c\u2019; puts(\u201chi\u201d);\n```")
    stats = Counter()
    got = fix_lookalikes(text, stats)
    assert got == ("It\u2019s \u201cfast\u201d: 3 \u2212 2 and/or 1/2.\n\n```\n"
                   "// Kernel definition\nx = a - b; s = 'c'; puts(\"hi\");\n```")
    assert stats["lookalikes_replaced"] == 8 and count_left(got) == 0
    assert count_left(text) == 8


def test_leader_lines_dropped_prose_ellipsis_kept():
    text = ("5.1 Kernels . . . . . . . . . 12\n5.2 Memory Hierarchy.............14\n"
            "The loop runs on . . . .\n```\nx = 1 . . . . 2\n```")
    stats = Counter()
    assert drop_leader_lines(text, stats) == "The loop runs on . . . .\n```\nx = 1 . . . . 2\n```"
    assert stats["toc_lines_removed"] == 2
    contents = ["Contents", "1 Introduction 1", "2 Getting Started", ". . . . . . . 3",
                "2.1 Default Runtime Environment . . . . 4", "2.2 Jobs . . . . . . . 5"]
    assert is_toc_page(contents)
    assert not is_toc_page(["The cache holds recently used lines.", "A miss costs 200 cycles.",
                            "Blocking keeps the working set small . . . . 3"])
