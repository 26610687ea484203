"""Clean: HTML main content, boilerplate removal, structure kept, charsets."""
from __future__ import annotations

from collections import Counter

from lib.clean.html import extract_html

PAGE = """<!DOCTYPE html>
<html><head><title>MPI &amp; OpenMP</title><style>p {color: red}</style>
<script>var tracking = "nope";</script></head>
<body>
<header><a href="/">Home</a> site header</header>
<nav><ul><li><a href="/a">Docs</a></li><li><a href="/b">Blog</a></li></ul></nav>
<div id="cookie-banner">We use cookies. Accept all?</div>
<main>
  <div class="breadcrumbs"><a href="/">Home</a> &gt; <a href="/mpi">MPI</a></div>
  <h1>Hybrid   MPI &amp; OpenMP</h1>
  <p>Each rank   runs several
     threads &mdash; see <a href="/x">the guide</a>.</p>
  <ul><li>first item<ul><li>nested item</li></ul></li><li>second item</li></ul>
  <ol><li>one</li><li>two</li></ol>
  <pre><code>#pragma omp parallel for
for (int i = 0; i &lt; n; i++) {
    a[i] = b[i] + c[i];
}</code></pre>
  <p>Line one<br>Line two</p>
  <a href="https://github.com/x/edit/main/page.md">Edit this page</a>
  <form><input name="q"><button>Search</button></form>
  <aside>Related: other posts</aside>
</main>
<footer>Copyright 2024 footer text</footer>
</body></html>"""


def test_main_content_only_with_structure():
    stats = Counter()
    got = extract_html(PAGE.encode(), "text/html; charset=utf-8", stats)
    assert got.title == "MPI & OpenMP"
    assert got.text.split("\n") == [
        "# Hybrid MPI & OpenMP", "",
        "Each rank runs several threads \u2014 see the guide.", "",
        "- first item", "  - nested item", "- second item", "",
        "1. one", "2. two", "",
        "```", "#pragma omp parallel for", "for (int i = 0; i < n; i++) {",
        "    a[i] = b[i] + c[i];", "}", "```", "",
        "Line one", "Line two", ""]
    for junk in ("Home", "cookies", "Docs", "footer", "Search", "Related", "tracking", "color",
                 "Edit this page"):
        assert junk not in got.text
    assert stats["html_boilerplate_elements"] >= 8 and stats["html_edit_links"] == 1
    assert got.link_chars == len("theguide")


def test_article_when_no_main_and_body_otherwise():
    html = b"<html><body><div>menu junk</div><article><p>short</p></article>" \
           b"<article><p>the longer article text wins</p></article></body></html>"
    assert extract_html(html, None, Counter()).text.strip() == "the longer article text wins"
    html = b"<html><body><div><p>only body text</p></div></body></html>"
    assert extract_html(html, None, Counter()).text.strip() == "only body text"


def test_legacy_charsets_and_undecodable_bytes():
    body = "<html><head><meta charset='windows-1252'></head><body><p>na\u00efve caf\u00e9 \u2013 ok</p></body></html>"
    assert "na\u00efve caf\u00e9 \u2013 ok" in extract_html(body.encode("cp1252"), None, Counter()).text
    # declared utf-8 by the server but actually latin-1: sniffed, not crashed
    stats = Counter()
    got = extract_html("<p>r\u00e9sum\u00e9</p>".encode("latin-1"), "text/html; charset=utf-8", stats)
    assert "r\u00e9sum\u00e9" in got.text and stats["charset_sniffed"] == 1
    assert isinstance(extract_html(bytes(range(256)) * 10, None, Counter()).text, str)


def test_link_list_page_counts_anchor_characters():
    links = "".join(f'<li><a href="/p{i}">Page number {i}</a></li>' for i in range(30))
    got = extract_html(f"<html><body><ul>{links}</ul></body></html>".encode(), None, Counter())
    nonspace = len("".join(got.text.split()))
    assert got.link_chars / nonspace > 0.8


def test_deeply_nested_markup_does_not_crash():
    html = "<div>" * 1200 + "deep text" + "</div>" * 1200
    got = extract_html(f"<html><body>{html}</body></html>".encode(), None, Counter())
    assert "deep text" in got.text


def test_table_rows_become_lines_with_cells():
    html = b"<table><tr><th>Level</th><th>Latency</th></tr><tr><td>L1</td><td>4 cycles</td></tr></table>"
    assert extract_html(html, None, Counter()).text.strip() == "Level | Latency\n\nL1 | 4 cycles"
