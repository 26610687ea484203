"""Main-content extraction from HTML with BeautifulSoup.

Boilerplate (nav, header, footer, aside, scripts, forms, cookie banners, breadcrumbs, "edit this
page" links) is removed; headings, lists and code blocks keep their structure as light Markdown,
and <pre> (and Doxygen's <div class="fragment"> listings) keep their line breaks and
indentation inside ``` fences.
"""
from __future__ import annotations

import re
from collections import Counter

from bs4 import BeautifulSoup, NavigableString
from bs4.element import Comment, Declaration, Doctype, ProcessingInstruction, Tag

from lib.clean.html_nav import is_nav_line
from lib.clean.text import declared_charset, decode
from lib.clean.types import Extracted

# The counters this module adds to a document's stats (lib/clean/counters.py gathers them).
COUNTERS = ("html_boilerplate_elements", "html_code_fragments", "html_edit_links",
            "html_flat_fallback", "html_nav_lines")
DROP_TAGS = ["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "iframe",
             "svg", "button", "template", "select", "input", "textarea", "object", "embed", "canvas"]
DROP_ROLES = {"navigation", "banner", "contentinfo", "complementary", "search", "menu", "menubar"}
_LETTER = re.compile(r"[^\W\d_]")
_BOILER = re.compile(r"(^|[-_ ])(cookies?|consent|gdpr|breadcrumbs?|navbar|sidebar|skip-?link|"
                     r"edit-?(this-?)?page|edit-?link|share|social|advert|ads|banner|related(-?posts)?|"
                     r"byline|post-?meta|tags|paywall|cookie-?(banner|consent|notice)|"
                     r"footer|site-?header|masthead|toc-?sidebar|sitesub|catlinks|printfooter|editsection|"
                     r"noprint|jump-?to-?nav|mw-jump|skip-?to-?content|newsletter|subscribe)([-_ ]|$)", re.I)
_EDIT_LINK = re.compile(r"^\s*(edit (this page|on github|page|source)|view (page )?source|"
                        r"improve this page|suggest (an )?edit|report an issue)\b", re.I)
HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
BLOCKS = {"p", "div", "section", "article", "main", "body", "blockquote", "figure", "figcaption",
          "dl", "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "address", "details",
          "summary", "center", "hr", "caption", "html"}
_SKIP_STRINGS = (Comment, Declaration, Doctype, ProcessingInstruction)
_BR = "\x01"
_KEEP_SPACES = {"pre", "textarea", "div"}



def _remove_boilerplate(soup: BeautifulSoup, stats: Counter) -> None:
    for a in soup.find_all("a"):
        if not a.decomposed and _EDIT_LINK.match(a.get_text()):
            stats["html_edit_links"] += 1
            a.decompose()
    for tag in soup.find_all(DROP_TAGS):
        if not tag.decomposed:
            stats["html_boilerplate_elements"] += 1
            tag.decompose()
    for tag in soup.find_all(True):
        if tag.decomposed or tag.name in HEADINGS or tag.name in ("main", "article", "body", "html"):
            continue
        attrs = tag.attrs or {}
        role = str(attrs.get("role", "")).lower()
        marks = " ".join(attrs.get("class", []) if isinstance(attrs.get("class"), list) else [])
        marks += " " + str(attrs.get("id", ""))
        if role in DROP_ROLES or (marks.strip() and _BOILER.search(marks)):
            stats["html_boilerplate_elements"] += 1
            tag.decompose()


def _root(soup: BeautifulSoup) -> Tag:
    main = soup.find("main") or soup.find(attrs={"role": "main"})
    if main is not None:
        return main
    articles = soup.find_all("article")
    if articles:
        return max(articles, key=lambda a: len(a.get_text()))
    return soup.body or soup


class _Renderer:
    def __init__(self, stats: Counter):
        self.lines: list[str] = []
        self.inline: list[str] = []
        self.prefix = ""
        self.link_chars = 0
        self.pending_links = 0       # links in the inline run not yet flushed
        self.pending_link_chars = 0
        self.stats = stats

    def flush(self) -> None:
        raw = "".join(self.inline)
        self.inline.clear()
        parts = [" ".join(p.split()).removesuffix(" |") for p in raw.split(_BR)]
        parts = [p for p in parts if p]
        links, link_chars = self.pending_links, self.pending_link_chars
        self.pending_links = self.pending_link_chars = 0
        if parts and is_nav_line(" ".join(parts), links, link_chars):
            self.stats["html_nav_lines"] += 1
            parts = []
        if parts:
            self.link_chars += link_chars
            self.lines.append(self.prefix + parts[0])
            pad = " " * len(self.prefix)
            self.lines.extend(pad + p for p in parts[1:])
            if not self.prefix:
                self.lines.append("")
        self.prefix = ""

    def walk(self, node: Tag, depth: int = 0) -> None:
        for child in node.children:
            if isinstance(child, NavigableString):
                if not isinstance(child, _SKIP_STRINGS):
                    self.inline.append(str(child))
                continue
            name = child.name
            if name == "pre":
                self.flush()
                code = child.get_text().strip("\n")
                if code.strip():
                    self.lines.extend(["```", *code.split("\n"), "```", ""])
            elif name == "div" and "fragment" in (child.get("class") or ()):
                self.flush()
                self._fragment(child)
            elif name in HEADINGS:
                self.flush()
                # Sphinx and Doxygen put a "¶" permalink after every heading
                title = " ".join(child.get_text(" ").split()).rstrip("\u00b6 ")
                # a heading without a letter is a marker (texinfo's footnote "(6)"), not a title
                if title:
                    mark = "#" * HEADINGS[name] + " " if _LETTER.search(title) else ""
                    self.lines.extend([mark + title, ""])
            elif name in ("ul", "ol"):
                self.flush()
                self._list(child, depth)
                if depth == 0:
                    self.lines.append("")
            elif name == "br":
                self.inline.append(_BR)
            elif name == "a":
                self.pending_links += 1
                self.pending_link_chars += sum(1 for ch in child.get_text() if not ch.isspace())
                self.walk(child, depth)
            elif name in ("td", "th"):
                self.walk(child, depth)
                self.inline.append(" | ")
            elif name in BLOCKS:
                self.flush()
                self.walk(child, depth)
                self.flush()
            else:
                self.walk(child, depth)

    def _fragment(self, node: Tag) -> None:
        """Doxygen's listings are not <pre>: one <div class="line"> per source line, its line
        number in a <span class="lineno">. Fenced like <pre>, without the numbers."""
        for span in node.find_all("span", class_="lineno"):
            span.decompose()
        rows = node.find_all("div", class_="line") or [node]
        code = [row.get_text().rstrip() for row in rows]
        while code and not code[-1].strip():
            code.pop()
        if any(ln.strip() for ln in code):
            self.stats["html_code_fragments"] += 1
            self.lines.extend(["```", *code, "```", ""])

    def _list(self, node: Tag, depth: int) -> None:
        items = [li for li in node.children if isinstance(li, Tag) and li.name == "li"]
        for i, li in enumerate(items, start=1):
            marker = f"{i}. " if node.name == "ol" else "- "
            self.prefix = "  " * depth + marker
            self.walk(li, depth + 1)
            self.flush()


def extract_html(data: bytes, content_type: str | None, stats: Counter) -> Extracted:
    text = decode(data, declared_charset(data, content_type), stats)
    # bs4 shrinks a whitespace-only string to one space outside <pre>; Doxygen's listings
    # indent with such strings between spans, inside <div class="line">
    soup = BeautifulSoup(text, "html.parser", preserve_whitespace_tags=_KEEP_SPACES)
    title_tag = soup.title
    title = " ".join(title_tag.get_text().split()) if title_tag else ""
    _remove_boilerplate(soup, stats)
    root = _root(soup)
    h1 = root.find("h1")
    heading = " ".join(h1.get_text().split()) if h1 else ""
    if heading and (not title or title.startswith(heading)):  # "Topic | Site name" -> "Topic"
        title = heading
    renderer = _Renderer(stats)
    try:
        renderer.walk(root)
        renderer.flush()
        body = "\n".join(renderer.lines)
    except RecursionError:  # absurdly deep markup: fall back to flat text
        stats["html_flat_fallback"] += 1
        body = root.get_text("\n")
    return Extracted(title, body, renderer.link_chars)
