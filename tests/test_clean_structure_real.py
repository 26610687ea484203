"""Structure survives cleaning, on real third-party documents (tests/real_docs.py; Debian
documentation packages that .ci/run installs; each test skips naming its package when absent):
listings keep their lines and ASCII characters, contents pages and number-only headings go,
slides keep their bullets and titles, and relevance keeps the HPC manuals and drops licences.
"""
from __future__ import annotations

import re
from pathlib import Path
from functools import cache

import pytest

from lib.clean.config import CleanParams
from lib.clean.pipeline import process_bytes
from tests.real_docs import GROUPS, fetched, fetched_message, files, missing_message, read

P = CleanParams()
EXTRACTION = CleanParams(min_relevance=0.0)  # TeX manuals: structure, not topic, is tested
FENCE = re.compile(r"^\s*```")
LEADER = re.compile(r"(?:\.\s?){4,}\s*\d{1,4}\s*$")
NUMBER_HEADING = re.compile(r"^#{1,6}\s+[\d\W]+$", re.M)
LOOKALIKE_IN_CODE = re.compile("[\u2215\u2044\u2212\u2018\u2019\u201c\u201d]")


def need(group: str, name: str):
    found = [p for p in files(group, limit=False) if p.name == name]
    if not found:
        pytest.skip(missing_message(group))
    return found[0]


@cache
def cleaned(path, topic: bool = True) -> dict:
    """The pipeline's result; topic=False: with the relevance filter off."""
    kind = next(g.kind for n, g in GROUPS.items() if path in files(n, limit=False))
    return process_bytes(read(path), {"type": kind, "source": str(path)}, P if topic else EXTRACTION)


def code_and_prose(text: str) -> tuple[str, str]:
    code, prose, inside = [], [], False
    for line in text.split("\n"):
        if FENCE.match(line):
            inside = not inside
        else:
            (code if inside else prose).append(line)
    return "\n".join(code), "\n".join(prose)


def assert_clean_structure(text: str) -> None:
    code, prose = code_and_prose(text)
    assert "\u2215" not in text
    assert not LOOKALIKE_IN_CODE.search(code), LOOKALIKE_IN_CODE.search(code).group(0)
    leaders = [ln for ln in prose.split("\n") if LEADER.search(ln)]
    assert not leaders, leaders[:3]
    assert not NUMBER_HEADING.search(text), NUMBER_HEADING.search(text).group(0)


def test_tex_listing_keeps_lines_indentation_and_ascii_quotes():
    """The listings package's manual: its first example, as typeset in a typewriter font."""
    r = cleaned(need("listings", "listings.pdf"), topic=False)
    assert r["reason"] is None, (r["reason"], r["detail"])
    listing = ("```\n\\begin{lstlisting}\nfor i:=maxint to 0 do\nbegin\n    { do nothing }\nend;\n\n"
               "Write('Case insensitive ');\nWritE('Pascal keywords.');\n\\end{lstlisting}\n```")
    assert listing in r["text"]
    assert "It can\u2019t be easier." in r["text"]  # prose keeps its typography
    assert_clean_structure(r["text"])


def test_hpc_guide_listings_fenced_and_contents_dropped():
    """MPICH's user guide: shell and preprocessor listings in CMTT (a font MuPDF does not flag
    as monospaced), a contents page with dot leaders."""
    r = cleaned(need("mpich_guide", "user.pdf.gz"))
    assert r["reason"] is None, (r["reason"], r["detail"])
    text = r["text"]
    assert "```\n#undef SEEK_SET\n#undef SEEK_END\n#undef SEEK_CUR\n```" in text
    assert "```\nhost1\nhost2:2\nhost3:4   # Random comments\nhost4:1\n```" in text
    assert "```\nexport PATH=/home/you/mpich-installed/bin:$PATH\n```" in text
    assert "## Contents" not in text and "Default Runtime Environment . ." not in text
    # a compound broken at its hyphen stays whole (before: "DE-AC02- 06CH11357")
    assert "under Contract DE-AC02-06CH11357." in text
    assert r["stats"]["pdf_toc_lines_removed"] + r["stats"]["pdf_toc_pages"] > 0
    assert_clean_structure(text)


def test_html_pre_listing_kept_as_fenced_lines():
    r = cleaned(need("fftw", "Complex-DFTs.html"))
    assert r["reason"] is None, (r["reason"], r["detail"])
    assert ("```\nfftw_plan fftw_plan_dft_1d(int n0,\n"
            "                           fftw_complex *in, fftw_complex *out,\n"
            "                           int sign, unsigned flags);\n") in r["text"]
    assert_clean_structure(r["text"])


def test_html_footnote_marker_is_not_a_heading():
    """texinfo sets each footnote's number as <h5>(6)</h5>: a marker, kept as text."""
    r = cleaned(need("fftw", "Basic-Interface.html"))
    assert r["reason"] is None, (r["reason"], r["detail"])
    assert "#### Footnotes\n\n(6)\n\nGallia est omnis divisa" in r["text"]
    assert_clean_structure(r["text"])


def test_beamer_deck_bullets_titles_and_no_number_headings():
    # a bioinformatics talk: its structure is tested, not its topic (relevance drops it)
    r = cleaned(need("beamer", "beamerexample-conference-talk.pdf"), topic=False)
    assert r["reason"] is None, (r["reason"], r["detail"])
    text = r["text"]
    assert "## Outline\n\n- Introduction\n- The Model and the Problem\n- The Integrated Approach" in text
    assert "- Look for phylogenetic networks.\n- Correct data.\n" in text
    assert r["stats"]["pdf_slide_titles"] >= 10
    assert_clean_structure(text)


def test_powerpoint_deck_kept_with_bullets_titles_and_listing():
    """A deck made by PowerPoint (FZJ-JSC's multi-GPU tutorial, tests/real_docs.py FETCHED):
    its bullets are Wingdings glyphs set apart from their text (U+F0A7 to MuPDF), its body
    bullets are larger than the code, sub-bullets are indented, listings are in Consolas."""
    path = fetched("pptx_deck")
    if path is None:
        pytest.skip(fetched_message("pptx_deck"))
    r = process_bytes(path.read_bytes(), {"type": "pdf", "source": path.name}, P)
    assert r["reason"] is None, (r["reason"], r["detail"])
    text = r["text"]
    assert ("## Motivation\n\n"
            "- MPI is not (yet [1]) aware of CUDA streams\n"
            "- Explicit synchronization between GPU-compute kernel and CPU communication calls is "
            "required\n"
            "- CUDA-aware MPI is GPU-memory-aware communication\n"
            "- For better efficiency: CUDA-stream-aware communication\n"
            "  - Communication, which is aware of CUDA-streams or use CUDA streams\n"
            "  - NCCL and (Host-API) of NVSHMEM\n") in text
    # set in 24 pt over a 17 pt body: still bullets, not headings
    assert "## So far we learned about\n\n- CUDA-Aware MPI\n- What is behind (GPUDirect" in text
    # a wrapped bullet is one item
    assert ("\n- First: Collective Operations (e.g. Allreduce), as they are required for "
            "DeepLearning\n") in text
    assert ("- NVSHMEM supports the OpenSHMEM library, supporting one sided communication "
            "operation\n- Both allow to issue communication request asynchronous with respect to "
            "the CPU-thread, but synchronous to CUDA streams\n") in text
    for title in ("Summary", "Motivation", "NCCL-API (With MPI) - Initialization",
                  "How to Compile an MPI+NCCL Application"):
        assert f"\n## {title}\n" in text, title
    assert ("```\nMPI_Init(&argc,&argv)\nMPI_Comm_size(MPI_COMM_WORLD, &size);\n"
            "MPI_Comm_rank(MPI_COMM_WORLD, &rank);\n\nncclUniqueId nccl_uid;\n"
            "if (rank == 0) ncclGetUniqueId(&nccl_uid);\n") in text
    # a slide of bullets beside listings, the gutter left of the middle: column by column,
    # and identifiers set in the bullets' size inside a sentence stay in the sentence
    assert ("\n- Multiple calls to ncclSend() and ncclRecv() should be fused with ncclGroupStart() "
            "and ncclGroupEnd()to\n") in text
    assert ("Bcast:\n\n```\nncclGroupStart();\nif (rank == root) {\n"
            "  for (int r=0; r<nranks; r++)\n"
            "    ncclSend(sendbuff[r], size, type, r, comm, stream);}\n"
            "ncclRecv(recvbuff, size, type, root, comm, stream);\nncclGroupEnd();\n```") in text
    assert not re.search("[\ue000-\uf8ff]", text)  # no symbol-font glyph left
    assert "\n# \u2022" not in text and "\n## \u2022" not in text
    assert r["stats"]["pdf_bullet_glyphs"] >= 40
    assert_clean_structure(text)


def test_beamer_user_guide_listings_and_no_contents():
    """A 250-page manual made with Beamer's own article mode: listings, a long contents."""
    r = cleaned(need("beamer", "beameruserguide.pdf"), topic=False)
    assert r["reason"] is None, (r["reason"], r["detail"])
    assert "```\n\\begin{frame}\n" in r["text"]
    assert r["stats"]["pdf_code_blocks"] > 100
    assert_clean_structure(r["text"])


@pytest.mark.parametrize("group", ["tex_manuals", "line_numbers", "dvipdfm", "listings",
                                   "mpich_guide", "bzip2_pdf", "nettle_pdf"])
def test_no_leaders_lookalikes_or_number_headings_left(group):
    found = files(group)
    if not found:
        pytest.skip(missing_message(group))
    for path in found:
        r = cleaned(path, topic=False)
        assert r["reason"] in (None, "language"), (path.name, r["reason"], r["detail"])
        assert_clean_structure(r["text"])


def test_relevance_keeps_hpc_manuals_and_drops_off_topic_documents():
    """clean.min_relevance (on by default) against the test bed: every on-topic ("hpc") document
    scores above it; every off-topic one (licences, and the XSLT, bzip2 and nettle manuals, whose
    "node", "memory", "buffer" and "message" are HPC's words too) scores below it and is dropped
    as off_topic unless an earlier rule already rejected it."""
    hpc = [p for n, g in GROUPS.items() if g.topic == "hpc" for p in files(n)]
    off = {n: files(n) for n, g in GROUPS.items() if g.topic == "off"}
    if not hpc or not all(off.values()):
        pytest.skip(missing_message("mpich" if not hpc else next(n for n, f in off.items() if not f)))
    # pages with next to no words (a JavaScript form, an index of links) are not judged on topic
    low = [(p.name, r["relevance"]) for p in hpc for r in [cleaned(p)]
           if r["words"] >= 100 and r.get("relevance", 0) < P.min_relevance]
    assert not low, low
    kept = [(p.name, r["relevance"]) for paths in off.values() for p in paths for r in [cleaned(p)]
            if r["reason"] is None or r.get("relevance", 0) >= P.min_relevance]
    assert not kept, kept
    for path in off["licences"]:
        r = cleaned(path)
        assert r["reason"] == "off_topic", (path.name, r["reason"], r.get("relevance"))


def test_code_rule_passes_real_listings_and_catches_minified_code():
    """The code path through the filters: a real program's source (underscore.js, as written)
    in a fence passes; the same library minified (libjs-underscore ships both) is code_junk."""
    src = Path("/usr/share/javascript/underscore")
    if not (src / "underscore.min.js").exists():
        pytest.skip("needs the Debian package libjs-underscore (apt-get install libjs-underscore)")
    intro = need("fftw", "Introduction.html")
    prose = cleaned(intro)["text"]
    for name, reason in (("underscore.js", None), ("underscore.min.js", "code_junk")):
        code = (src / name).read_text("utf-8")[:40_000]
        doc = f"{prose}\n\n```js\n{code}\n```\n".encode()
        r = process_bytes(doc, {"type": "markdown", "source": name}, P)
        assert r["reason"] == reason, (name, r["reason"], r["detail"])


def test_doxygen_source_listing_fenced_with_indentation():
    """hwloc's Doxygen source pages: <div class="line"> rows, not <pre>; before, rows holding
    links were dropped as navigation and the page rejected as mean_word_length."""
    r = cleaned(need("hwloc", "a00146_source.html"))
    assert r["reason"] is None, (r["reason"], r["detail"])
    assert ("union hwloc_topology_diff_obj_attr_u {\n"
            "  struct hwloc_topology_diff_obj_attr_generic_s {\n"
            "    /* each part of the union must start with these */\n"
            "    hwloc_topology_diff_obj_attr_type_t type;\n"
            "  } generic;\n") in r["text"]
    assert "Definition:" not in r["text"]  # hover tooltips are not source
    assert_clean_structure(r["text"])
