"""Clean on real third-party documents (tests/real_docs.py: Debian documentation packages, which
.ci/run installs). Each group skips, naming its package, when that package is absent.

These assert the goals of the real-document work: PDF text close to poppler's pdftotext (recall
of non-space characters, no glued words), reading order of a two-column paper and of a 2x2
handout, no navigation strings or U+FFFD in kept text, on-topic English manuals kept and
non-English documents rejected with their reason.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import unicodedata
from collections import Counter
from functools import cache

import pymupdf
import pytest

from lib.clean.config import CleanParams
from lib.clean.extract import extract
from lib.clean.pipeline import process_bytes
from tests.real_docs import GROUPS, files, missing_message, read

P = CleanParams()
NAV = re.compile(r"^\W*(Up|Next|Previous|Prev):|^\s*Return to\b", re.M)


def need(name: str, limit: bool = True) -> list:
    found = files(name, limit)
    if not found:
        pytest.skip(missing_message(name))
    return found


def extract_pdf(data: bytes, stats: Counter):
    """The PDF text as the pipeline keeps it: extracted and normalised."""
    return extract(data, "pdf", None, P, stats)


@cache
def cleaned(path, topic: bool = True) -> dict:
    """The pipeline's result; topic=False: with the relevance filter off."""
    params = P if topic else CleanParams(min_relevance=0.0)
    return process_bytes(read(path), {"type": GROUPS_BY_PATH[path], "source": str(path)}, params)


GROUPS_BY_PATH: dict = {}
for _name, _group in GROUPS.items():
    for _path in files(_name, limit=False):
        GROUPS_BY_PATH[_path] = _group.kind


def nonspace(text: str) -> Counter:
    return Counter(c for c in unicodedata.normalize("NFKC", text) if not c.isspace())


def long_tokens(text: str) -> int:
    return sum(1 for w in text.split() if len(w) > 25)


def pdftotext_body(path) -> str:
    """pdftotext's text without the lines that recur on half its pages or more (running heads,
    slide navigation): the part of the page a cleaner is meant to keep."""
    if shutil.which("pdftotext") is None:
        pytest.skip("needs poppler-utils (apt-get install poppler-utils; .ci/run installs it)")
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", "-", "-"], input=read(path),
                         capture_output=True, check=True).stdout.decode("utf-8", "replace")
    pages = out.split("\f")
    counts = Counter(ln for page in pages for ln in {" ".join(x.split()) for x in page.split("\n")})
    common = {ln for ln, n in counts.items() if ln and len(pages) >= 3 and n >= len(pages) / 2}
    return "\n".join(ln for page in pages for ln in page.split("\n")
                     if " ".join(ln.split()) not in common)


@pytest.mark.parametrize("group", ["tex_manuals", "two_column", "line_numbers", "beamer", "dvipdfm"])
def test_pdf_text_close_to_pdftotext(group):
    for path in need(group):
        ref = pdftotext_body(path)
        ours = extract_pdf(read(path), Counter()).text
        a, b = nonspace(ours), nonspace(ref)
        recall = sum(min(a[c], n) for c, n in b.items()) / max(1, sum(b.values()))
        assert recall >= 0.9, f"{path.name}: {recall:.3f} of pdftotext's characters"
        # glued words: tokens over 25 characters; 2 tokens of slack for documents with a handful
        assert long_tokens(ours) <= 1.2 * long_tokens(ref) + 2, path.name
        assert "\ufffd" not in ours, path.name


def test_known_sentences_and_two_column_reading_order():
    (paper,) = need("two_column")
    text = " ".join(extract_pdf(read(paper), Counter()).text.split())
    # page 2, left column then right column of LaTeX News 35
    left = ("The command expects a key/value list that describes all document metadata for the "
            "current document.")
    right = "The mark mechanism is TEX’s way to pass information to the page-building process"
    assert left in text and right in text
    assert text.index(left) < text.index(right)
    guide = need("tex_manuals")[0]
    assert "usrguide" in guide.name
    assert "LaTeX" in extract_pdf(read(guide), Counter()).text


def test_two_by_two_handout_reads_row_by_row():
    """Four real Beamer slides placed 2x2 on one page, as pgfpages' "4 on 1" handouts do."""
    talk = next(p for p in need("beamer") if "conference-talk" in p.name)
    src = pymupdf.open(stream=read(talk), filetype="pdf")
    slides = [3, 4, 5, 6]
    handout = pymupdf.open()
    page = handout.new_page(width=595, height=842)
    w, h = 595 / 2, 842 / 2
    for i, n in enumerate(slides):
        x, y = (i % 2) * w, (i // 2) * h
        page.show_pdf_page(pymupdf.Rect(x + 20, y + 60, x + w - 20, y + h - 60), src, n)
    got = " ".join(extract_pdf(handout.tobytes(), Counter()).text.split())
    firsts = []
    for n in slides:
        one = pymupdf.open()  # the slide alone, on a page like the handout's (not a deck)
        one.new_page(width=595, height=842).show_pdf_page(
            pymupdf.Rect(20, 60, w - 20, h - 60), src, n)
        body = [ln for ln in extract_pdf(one.tobytes(), Counter()).text.split("\n") if len(ln) > 30]
        firsts.append(" ".join(body[0].split()))
    positions = [got.find(f) for f in firsts]
    assert -1 not in positions, (firsts, got[:500])
    assert positions == sorted(positions)


HTML_ON_TOPIC = {"slurm": ["cpu_management.html", "add.html", "dist_plane.html",
                           "cons_res_share.html", "burst_buffer.conf.html"],
                 "fftw": ["Introduction.html", "2d-MPI-example.html"],
                 "python": ["threading.html", "asyncio-task.html"]}


@pytest.mark.parametrize("group", ["slurm", "fftw", "python", "mpich"])
def test_english_manuals_kept_without_nav_or_fffd(group):
    named = HTML_ON_TOPIC.get(group)
    found = need(group, limit=not named)
    paths = [p for p in found if p.name in named] if named else found[:12]
    assert not named or len(paths) == len(named), f"{group}: {named} not all installed"
    for path in paths:
        r = cleaned(path)
        assert r["reason"] is None, f"{path.name}: {r['reason']} {r['detail']}"
        assert not NAV.search(r["text"]), f"{path.name}: {NAV.search(r['text']).group(0)!r}"
        assert "\ufffd" not in r["text"], path.name
        assert r["relevance"] >= P.min_relevance, f"{path.name}: relevance {r['relevance']}"


def test_texinfo_navigation_removed():
    (intro,) = [p for p in need("fftw", limit=False) if p.name == "Introduction.html"]
    raw = read(intro).decode("utf-8", "replace")
    assert "Next:" in raw and "Previous:" in raw  # the source has the nav panel...
    text = cleaned(intro)["text"]
    assert "Next:" not in text and "Previous:" not in text and "[Contents]" not in text
    assert "FFTW is a comprehensive collection of fast C routines" in text


def test_link_indexes_and_script_pages_rejected_with_reason():
    slurm = {p.name: p for p in need("slurm", limit=False)}
    if "documentation.html" in slurm:
        assert cleaned(slurm["documentation.html"])["reason"] == "link_list"
    if "configurator.html" in slurm:
        assert cleaned(slurm["configurator.html"])["reason"] == "too_short"  # a JS-only form


@pytest.mark.parametrize("group", ["faq_html_de", "faq_html_fr", "faq_html_ja", "german_pdf",
                                   "faq_pdf_de"])
def test_non_english_rejected_with_reason(group):
    for path in need(group)[:6]:
        r = cleaned(path)
        if path.name.startswith("index."):
            assert r["reason"] == "link_list"
            continue
        assert r["reason"] == "language", f"{path.name}: {r['reason']} {r['detail']}"
        assert not r["detail"].startswith("en ")


def test_relevance_ranks_hpc_above_other_manuals_and_threshold_drops_off_topic():
    mpich = [cleaned(p)["relevance"] for p in need("mpich")[:8]]
    tex = [cleaned(p)["relevance"] for p in need("tex_manuals")]
    assert min(mpich) > max(tex), (mpich, tex)
    strict = CleanParams(min_relevance=min(mpich) / 2)
    guide = need("tex_manuals")[0]
    r = process_bytes(read(guide), {"type": "pdf", "source": str(guide)}, strict)
    assert r["reason"] == "off_topic"
    mpi = need("mpich")[0]
    assert process_bytes(read(mpi), {"type": "html", "source": str(mpi)}, strict)["reason"] is None


def test_repeated_slide_lines_removed_and_counted():
    talk = next(p for p in need("beamer") if "conference-talk" in p.name)
    r = cleaned(talk, topic=False)  # a bioinformatics talk: off topic for HPC
    assert r["reason"] is None, (r["reason"], r["detail"])
    assert r["stats"]["boilerplate_lines_removed"] > 0
    lines = [" ".join(ln.split()) for ln in r["text"].split("\n") if ln.strip()]
    worded = [ln for ln in lines if re.search(r"[^\W\d_]", ln)]
    assert len(worded) == len(set(worded))
    # lines without a letter are data, not boilerplate: the appendix's genotype matrix keeps
    # every cell (before, each "2" and "0" after the first was deleted as a repeat)
    assert sum(ln == "- 2" for ln in lines) >= 10
