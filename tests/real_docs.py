"""The real-document test bed: third-party documents that Debian's documentation packages put
under /usr/share/doc (installed by .ci/run; nothing here is copied into the repository).

Each group names its files by path and the package that ships them, so a test (or the
benchmark) can say exactly what to install when they are absent.
"""
from __future__ import annotations

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

DOC = Path("/usr/share/doc")
TEX = DOC / "texlive-doc"


@dataclass(frozen=True)
class Group:
    package: str          # the Debian package that ships the files
    kind: str             # html | pdf
    paths: tuple[str, ...]  # globs under /usr/share/doc
    english: bool = True
    limit: int = 0        # at most this many files per glob (sorted), 0: all
    topic: str = ""       # "hpc": on-topic, must be kept; "off": must be dropped as off_topic;
                          # "": extraction material (TeX and Python manuals), neither
    root: str = ""        # the folder the globs are under, when not /usr/share/doc


GROUPS = {
    # TeX-typeset PDFs: spaces are glyph positions, not space characters
    "tex_manuals": Group("texlive-latex-base-doc", "pdf", (
        "texlive-doc/latex/base/usrguide.pdf", "texlive-doc/latex/base/clsguide.pdf",
        "texlive-doc/latex/base/fntguide.pdf", "texlive-doc/latex/tools/multicol.pdf",
        "texlive-doc/latex/amscls/amsthdoc.pdf")),
    "two_column": Group("texlive-latex-base-doc", "pdf", ("texlive-doc/latex/base/ltnews35.pdf",)),
    "line_numbers": Group("texlive-latex-recommended-doc", "pdf",
                          ("texlive-doc/latex/lineno/lineno.pdf",)),
    "beamer": Group("texlive-latex-recommended-doc", "pdf", (
        "texlive-doc/latex/beamer/beameruserguide.pdf",
        "texlive-doc/latex/beamer/beamerexample-conference-talk.pdf")),
    "dvipdfm": Group("texlive-base", "pdf", ("texlive-doc/dvipdfm/dvipdfm.pdf",
                                             "texlive-doc/dvipdfmx/tug2003-slides.pdf")),
    "german_pdf": Group("texlive-latex-recommended-doc", "pdf", (
        "texlive-doc/latex/beamer/beamerexample-lecture-print-version.pdf",), english=False),
    "faq_pdf_de": Group("debian-faq-de", "pdf", ("debian/FAQ/debian-faq.de.pdf.gz",), english=False),
    "faq_pdf_fr": Group("debian-faq-fr", "pdf", ("debian/FAQ/debian-faq.fr.pdf.gz",), english=False),
    "faq_pdf_ja": Group("debian-faq-ja", "pdf", ("debian/FAQ/debian-faq.ja.pdf.gz",), english=False),
    # HTML: an SSI-built site, doctext man pages, Sphinx, texinfo, Doxygen
    "slurm": Group("slurm-wlm-doc", "html", ("slurm-wlm/html/*.html",), limit=40, topic="hpc"),
    "mpich": Group("mpich-doc", "html", ("mpich-doc/html/www3/MPI_*.html",), limit=30,
                   topic="hpc"),
    "python": Group("python3.11-doc", "html", ("python3.11/html/library/*.html",), limit=30),
    "fftw": Group("libfftw3-doc", "html", ("libfftw3-dev/html/*.html",), limit=30, topic="hpc"),
    "hwloc": Group("libhwloc-doc", "html", ("libhwloc-dev/html/*.html",), limit=20, topic="hpc"),
    # code listings in typewriter type: an HPC user's guide and a TeX package's manual
    "mpich_guide": Group("mpich-doc", "pdf", ("mpich/user.pdf.gz", "mpich/install.pdf.gz"),
                         topic="hpc"),
    "listings": Group("texlive-latex-recommended-doc", "pdf",
                      ("texlive-doc/latex/listings/listings.pdf",
                       "texlive-doc/latex/fancyvrb/fancyvrb-doc.pdf")),
    # off-topic for relevance: licences, and manuals of software outside the domain
    "licences": Group("base-files", "text", ("*",), root="/usr/share/common-licenses", topic="off"),
    "xslt_html": Group("libxslt1-dev", "html", ("libxslt1-dev/html/*.html",), topic="off"),
    "bzip2_pdf": Group("bzip2-doc", "pdf", ("bzip2/manual.pdf.gz",), topic="off"),
    "nettle_pdf": Group("nettle-dev", "pdf", ("nettle-dev/nettle.pdf.gz",), topic="off"),
    "faq_html_de": Group("debian-faq-de", "html", ("debian/FAQ/de/*.html",), english=False),
    "faq_html_fr": Group("debian-faq-fr", "html", ("debian/FAQ/fr/*.html",), english=False),
    "faq_html_ja": Group("debian-faq-ja", "html", ("debian/FAQ/ja/*.html",), english=False),
}
PACKAGES = sorted({g.package for g in GROUPS.values()} | {"poppler-utils"})


def files(name: str, limit: bool = True) -> list[Path]:
    """The group's installed files, sorted (the first `limit` per glob unless limit=False);
    empty when its package is absent."""
    group = GROUPS[name]
    out: list[Path] = []
    for pattern in group.paths:
        root = Path(group.root) if group.root else DOC
        found = sorted(p for p in root.glob(pattern) if p.is_file())
        out.extend(found[:group.limit] if group.limit and limit else found)
    return out


def read(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix == ".gz" else data


def missing_message(name: str) -> str:
    return (f"real-document group {name!r} needs the Debian package {GROUPS[name].package} "
            f"(apt-get install {GROUPS[name].package}; .ci/run installs it)")


# Third-party documents no Debian package ships, brought from public repositories. They are not
# committed here (the project keeps fetched files out of its history): a test that needs one
# looks in $HPC_LM_FETCHED_DOCS, else in shared/real_docs/ beside the checkout (where CI finds
# shared/), checks the bytes by their SHA-256, and skips naming the source when absent.
@dataclass(frozen=True)
class Fetched:
    file: str      # the name it is looked up by
    repo: str      # the public repository, its commit and the path there
    commit: str
    path: str
    licence: str
    sha256: str
    what: str


FETCHED = {
    # a PowerPoint deck: bullets set as Wingdings glyphs apart from their text, nested bullets,
    # slide titles in larger type, C listings in Consolas, a two-column code slide
    "pptx_deck": Fetched(
        "jsc-multi-gpu-07-nccl-nvshmem-slides.pdf", "FZJ-JSC/tutorial-multi-gpu",
        "bd2cc1c43c5e33ab31c9ba13f2f90d8c0e369fac",
        "07-L_Overview_of_NCCL_and_NVSHMEM_in_MPI_Programs/slides.pdf", "MIT",
        "6502ecc0b09397209ca83a7b26f11b77fdd76c1a4627babb8d213d7c5de18fb4",
        "22 slides, Creator and Producer 'Microsoft PowerPoint 2019', 696,425 bytes, uncut"),
}


def fetched_dirs() -> list[Path]:
    env = os.environ.get("HPC_LM_FETCHED_DOCS")
    here = Path(__file__).resolve().parents[1]
    return [Path(env)] if env else [here.parent / "shared" / "real_docs"]


def fetched(name: str) -> Path | None:
    """The fetched document's path when it is present with the recorded bytes, else None."""
    doc = FETCHED[name]
    for folder in fetched_dirs():
        path = folder / doc.file
        if path.is_file() and hashlib.sha256(path.read_bytes()).hexdigest() == doc.sha256:
            return path
    return None


def fetched_message(name: str) -> str:
    d = FETCHED[name]
    return (f"fetched document {name!r} absent: put {d.path} of {d.repo} at {d.commit[:12]} "
            f"({d.licence}, sha256 {d.sha256[:12]}) as {d.file} in "
            f"{' or '.join(str(p) for p in fetched_dirs())} (or set HPC_LM_FETCHED_DOCS)")
