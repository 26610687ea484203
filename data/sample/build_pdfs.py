#!/usr/bin/env python3
"""Build the sample PDF corpus in data/sample/docs/pdf/ from data/sample/pdf_src/.

Usage (from the repository root):

    uv run python data/sample/build_pdfs.py

Each source file (``.md`` or ``.txt``) in ``pdf_src/`` becomes one PDF with the
same stem. The layout imitates typeset documents so that the text cleaner has
realistic work to do: running headers and footers with page numbers, line
wrapping with hyphenated words at line ends, and, per document, the special
cases listed in ``SPECIAL`` below:

* ``ligatures``   - "fi"/"fl" written as U+FB01/U+FB02 in body text
* ``columns=2``   - two-column layout (column 1, then column 2, on each page)
* ``line_numbers``- review-draft line numbers (5, 10, 15, ...) in the left margin
* ``scan_pages``  - the listed pages are replaced by images (no text layer)
* ``scan_all``    - every page is an image (fully scanned document)
* ``encrypt``     - saved with user password "secret"
* ``truncate``    - valid PDF truncated to half its bytes (corrupt file)
* ``duplicate``   - one page appears twice, byte-for-byte identical content

The script also (re)writes two deliberately bad files in ``docs/text/``:
``empty.txt`` (0 bytes) and ``corrupt-notes.md`` (2 KiB of seeded random bytes).

Output is deterministic: fixed metadata, no timestamps, fonts subset, and
``reproducible=True`` when saving, so a rerun produces byte-identical files on
the same PyMuPDF version and fonts. Fonts: DejaVu TTFs are used when found
(they contain the ligature glyphs); otherwise the PDF base-14 fonts are used.
"""

from __future__ import annotations

import hashlib
import random
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

try:
    import pymupdf
except ImportError:  # older PyMuPDF releases only ship the "fitz" name
    import fitz as pymupdf  # type: ignore[no-redef]

HERE = Path(__file__).resolve().parent
SRC_DIR = HERE / "pdf_src"
OUT_DIR = HERE / "docs" / "pdf"
TEXT_DIR = HERE / "docs" / "text"

USER_PASSWORD = "secret"
OWNER_PASSWORD = "hpc-lm-sample-owner"
FIXED_DATE = "D:20240101000000Z"

# Per-document special cases (keys are source stems).
SPECIAL: dict[str, dict] = {
    "ch01-memory-hierarchy": {"ligatures": True, "chapter": 1},
    "ch02-openmp-tasks": {"ligatures": True, "chapter": 2},
    "ch03-vectorization": {"chapter": 3, "truncate": True},
    "ch04-hybrid-mpi-openmp": {"chapter": 4, "ligatures": True},
    "mpi-io-collective-whitepaper": {"columns": 2},
    "gpu-kernel-review-draft": {"line_numbers": True},
    "numa-tuning-report": {"scan_pages": [1]},  # 0-based: the second page
    "cluster-user-handbook": {"scan_all": True},
    "interconnect-evaluation-report": {"encrypt": True},
    "roofline-case-study": {"duplicate": 1},  # page index 1 appears twice
}

# --------------------------------------------------------------------------
# Fonts
# --------------------------------------------------------------------------

FONT_DIRS = [
    Path("/usr/share/fonts/truetype/dejavu"),
    Path("/usr/share/fonts/dejavu"),
    Path("/usr/share/fonts/TTF"),
    Path("/usr/share/fonts/truetype"),
    Path("/usr/local/share/fonts"),
    Path("/Library/Fonts"),
    Path.home() / "Library" / "Fonts",
]


def _find_font(filename: str) -> Path | None:
    for d in FONT_DIRS:
        p = d / filename
        if p.is_file():
            return p
    return None


def load_fonts() -> dict[str, pymupdf.Font]:
    wanted = {
        "body": ("DejaVuSerif.ttf", "tiro"),
        "bold": ("DejaVuSerif-Bold.ttf", "tibo"),
        "sans": ("DejaVuSans.ttf", "helv"),
        "mono": ("DejaVuSansMono.ttf", "cour"),
    }
    fonts = {}
    for role, (ttf, base14) in wanted.items():
        path = _find_font(ttf)
        fonts[role] = pymupdf.Font(fontfile=str(path)) if path else pymupdf.Font(base14)
    return fonts


# --------------------------------------------------------------------------
# Source parsing
# --------------------------------------------------------------------------


@dataclass
class Block:
    kind: str  # title | heading | para | item | code
    text: str = ""
    label: str = ""  # bullet or number for list items
    lines: list[str] = field(default_factory=list)  # code lines


_INLINE = re.compile(r"\*\*|`")
_TXT_HEADING = re.compile(r"^\d+(\.\d+)*\s+\S")
_ITEM = re.compile(r"^(\s*)([-*]|\d+\.)\s+(.*)$")


def strip_inline(s: str) -> str:
    return _INLINE.sub("", s)


def parse_markdown(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    para: list[str] = []

    def flush() -> None:
        if para:
            blocks.append(Block("para", strip_inline(" ".join(s.strip() for s in para))))
            para.clear()

    while i < len(lines):
        line = lines[i]
        if line.startswith("```"):
            flush()
            code = []
            i += 1
            while i < len(lines) and not lines[i].startswith("```"):
                code.append(lines[i].rstrip())
                i += 1
            blocks.append(Block("code", lines=code))
        elif line.startswith("# "):
            flush()
            blocks.append(Block("title", strip_inline(line[2:].strip())))
        elif line.startswith("#"):
            flush()
            blocks.append(Block("heading", strip_inline(line.lstrip("#").strip())))
        elif not line.strip():
            flush()
        elif (m := _ITEM.match(line)) and not para:
            label = "\u2022" if m.group(2) in "-*" else m.group(2)
            parts = [m.group(3)]
            while i + 1 < len(lines) and lines[i + 1].startswith("  ") and lines[i + 1].strip():
                i += 1
                parts.append(lines[i].strip())
            blocks.append(Block("item", strip_inline(" ".join(parts)), label=label))
        else:
            para.append(line)
        i += 1
    flush()
    return blocks


def parse_text(text: str) -> list[Block]:
    paras = [p for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    blocks = [Block("title", " ".join(paras[0].split()))]
    for p in paras[1:]:
        joined = " ".join(p.split())
        if "\n" not in p.strip() and _TXT_HEADING.match(joined) and len(joined) < 70:
            blocks.append(Block("heading", joined))
        else:
            blocks.append(Block("para", joined))
    return blocks


def ligaturize(s: str) -> str:
    return s.replace("fi", "\ufb01").replace("fl", "\ufb02")


# --------------------------------------------------------------------------
# Line breaking with simple hyphenation
# --------------------------------------------------------------------------

VOWELS = set("aeiouy")
NO_SPLIT = {"th", "ch", "sh", "ph", "wh", "ck", "qu", "gh"}
_WORD = re.compile(r"^([A-Za-z]?[a-z\ufb01\ufb02]+)([,.;:)]*)$")


SUFFIXES = ("tion", "sion", "ment", "ness", "able", "ible", "ance", "ence", "ing", "ity", "ers", "ally")


def hyphen_points(word: str) -> list[int]:
    """Candidate break positions inside a plain lower-case word (heuristic).

    Not a real hyphenation dictionary: it breaks before common suffixes,
    between two consonants that follow a vowel (VC-CV), and before a single
    consonant between vowels (V-CV), keeping at least three letters on each
    side and never splitting digraphs such as "th" or "ck".
    """
    w = word.lower().replace("\ufb01", "f").replace("\ufb02", "f")  # same length
    pts = set()
    for suf in SUFFIXES:
        if w.endswith(suf) and len(w) - len(suf) >= 3:
            pts.add(len(w) - len(suf))
    for i in range(3, len(w) - 2):
        a, b, c = w[i - 1], w[i], w[i + 1]
        if w[i - 1 : i + 1] in NO_SPLIT or w[i : i + 2] in NO_SPLIT:
            continue
        tail = w[i:]
        if len(tail) <= 4 and tail.endswith(("es", "ed", "er", "s")):
            continue  # avoid fragments like "-ces", "-ges", "-ted"
        if a in VOWELS and b not in VOWELS and b not in "wx" and c in VOWELS:  # V-CV
            pts.add(i)
        elif a not in VOWELS and b not in VOWELS and w[i - 2] in VOWELS and c in VOWELS:  # VC-CV
            pts.add(i)
    return sorted(pts)


def wrap(text: str, font: pymupdf.Font, size: float, width: float, hyphenate: bool = True) -> list[str]:
    space = font.text_length(" ", size)
    lines: list[str] = []
    cur = ""
    cur_w = 0.0
    words = text.split()
    k = 0
    while k < len(words):
        w = words[k]
        ww = font.text_length(w, size)
        extra = ww + (space if cur else 0)
        if cur_w + extra <= width:
            cur = f"{cur} {w}" if cur else w
            cur_w += extra
            k += 1
            continue
        room = width - cur_w - (space if cur else 0)
        m = _WORD.match(w)
        if hyphenate and cur and m and len(m.group(1)) >= 7 and room > 0.12 * width:
            core, tail = m.groups()
            best = None
            for p in hyphen_points(core):
                head = core[:p] + "-"
                if font.text_length(head, size) <= room:
                    best = p
            if best is not None:
                lines.append(f"{cur} {core[:best]}-")
                words[k] = core[best:] + tail
                cur, cur_w = "", 0.0
                continue
        if cur:
            lines.append(cur)
            cur, cur_w = "", 0.0
        else:  # a single word wider than the line: put it on its own line
            lines.append(w)
            k += 1
    if cur:
        lines.append(cur)
    return lines


# --------------------------------------------------------------------------
# Layout
# --------------------------------------------------------------------------


@dataclass
class Line:
    text: str
    font: str  # role in fonts dict
    size: float
    x_off: float  # offset from the frame's left edge
    advance: float  # vertical space consumed (leading)
    gap_before: float = 0.0
    numbered: bool = True  # counts for margin line numbers


@dataclass
class Geometry:
    width: float
    height: float
    margin_x: float
    margin_top: float
    margin_bottom: float
    columns: int = 1
    gutter: float = 18.0
    body_size: float = 10.5
    leading: float = 14.0

    @property
    def frame_width(self) -> float:
        total = self.width - 2 * self.margin_x
        return (total - (self.columns - 1) * self.gutter) / self.columns

    def frame_x(self, col: int) -> float:
        return self.margin_x + col * (self.frame_width + self.gutter)


def blocks_to_lines(blocks: list[Block], fonts, geo: Geometry, ligatures: bool) -> list[Line]:
    fw = geo.frame_width
    bs, lead = geo.body_size, geo.leading
    out: list[Line] = []

    def prose(s: str) -> str:
        return ligaturize(s) if ligatures else s

    for b in blocks:
        if b.kind == "title":
            size = bs + 4.5
            for j, t in enumerate(wrap(prose(b.text), fonts["bold"], size, fw, hyphenate=False)):
                out.append(Line(t, "bold", size, 0, size * 1.3, gap_before=0 if j else 2))
            if out:
                out[-1].advance += lead * 0.6
        elif b.kind == "heading":
            size = bs + 1.5
            for j, t in enumerate(wrap(prose(b.text), fonts["bold"], size, fw, hyphenate=False)):
                out.append(Line(t, "bold", size, 0, size * 1.35, gap_before=lead * 0.7 if j == 0 else 0))
        elif b.kind == "para":
            for j, t in enumerate(wrap(prose(b.text), fonts["body"], bs, fw)):
                out.append(Line(t, "body", bs, 0, lead, gap_before=lead * 0.45 if j == 0 else 0))
        elif b.kind == "item":
            indent = 16.0
            label_line = Line(b.label, "body", bs, 2, 0, gap_before=lead * 0.2, numbered=False)
            out.append(label_line)
            for t in wrap(prose(b.text), fonts["body"], bs, fw - indent):
                out.append(Line(t, "body", bs, indent, lead))
        elif b.kind == "code":
            longest = max((len(s) for s in b.lines), default=1)
            char_w = fonts["mono"].text_length("M", 1.0)
            size = max(5.5, min(bs - 2, (fw - 8) / (max(longest, 1) * char_w)))
            per_line = max(1, int((fw - 8) / (char_w * size)))  # hard-wrap what still does not fit
            first = True
            for s in b.lines:
                chunks = [s[i : i + per_line] for i in range(0, len(s), per_line)] or [""]
                for c in chunks:
                    out.append(Line(c, "mono", size, 8, size * 1.3, gap_before=lead * 0.45 if first else 0))
                    first = False
            if out:
                out[-1].advance += lead * 0.3
    return out


def paginate(lines: list[Line], geo: Geometry) -> list[list[list[tuple[float, Line]]]]:
    """Return pages -> frames -> [(baseline_y, line)]."""
    top = geo.margin_top
    bottom = geo.height - geo.margin_bottom
    pages: list[list[list[tuple[float, Line]]]] = []
    frame: list[tuple[float, Line]] = []
    page: list[list[tuple[float, Line]]] = [frame]
    y = top
    i = 0
    while i < len(lines):
        ln = lines[i]
        gap = ln.gap_before if frame else 0.0
        # keep a label line (zero advance) with the line that follows it,
        # and headings with at least two following lines
        need = ln.advance or (lines[i + 1].advance if i + 1 < len(lines) else 0)
        if ln.font == "bold" and ln.size > geo.body_size and i + 2 < len(lines):
            need += lines[i + 1].advance + lines[i + 2].advance
        if frame and y + gap + need > bottom:
            if len(page) < geo.columns:
                frame = []
                page.append(frame)
            else:
                pages.append(page)
                frame = []
                page = [frame]
            y = top
            continue
        y += gap
        baseline = y + ln.size
        frame.append((baseline, ln))
        y += ln.advance
        i += 1
    if any(page):
        pages.append(page)
    return pages


def render(stem: str, blocks: list[Block], fonts, geo: Geometry, opts: dict) -> pymupdf.Document:
    title = next((b.text for b in blocks if b.kind == "title"), stem)
    header = f"HPC Systems Notes - Chapter {opts['chapter']}" if "chapter" in opts else title
    lines = blocks_to_lines(blocks, fonts, geo, opts.get("ligatures", False))
    pages = paginate(lines, geo)
    doc = pymupdf.open()
    n = len(pages)
    sans = fonts["sans"]
    for pno, frames in enumerate(pages, start=1):
        page = doc.new_page(width=geo.width, height=geo.height)
        tw = pymupdf.TextWriter(page.rect)
        # running header: text + rule
        hsize = 7.5
        htxt = header
        while sans.text_length(htxt, hsize) > geo.width - 2 * geo.margin_x and len(htxt) > 10:
            htxt = htxt[:-2].rstrip() + "\u2026"
        tw.append((geo.margin_x, geo.margin_top - 22), htxt, font=sans, fontsize=hsize)
        page.draw_line((geo.margin_x, geo.margin_top - 17), (geo.width - geo.margin_x, geo.margin_top - 17), width=0.4, color=(0.4, 0.4, 0.4))
        # body
        counter = 0
        for col, frame in enumerate(frames):
            x0 = geo.frame_x(col)
            for baseline, ln in frame:
                if ln.text:
                    tw.append((x0 + ln.x_off, baseline), ln.text, font=fonts[ln.font], fontsize=ln.size)
                if opts.get("line_numbers") and ln.numbered and ln.advance:
                    counter += 1
                    if counter % 5 == 0:
                        lab = str(counter)
                        lx = geo.margin_x - 10 - sans.text_length(lab, 7)
                        tw.append((lx, baseline), lab, font=sans, fontsize=7)
        # running footer: centred page number
        ftxt = f"Page {pno} of {n}"
        fx = (geo.width - sans.text_length(ftxt, hsize)) / 2
        tw.append((fx, geo.height - geo.margin_bottom + 26), ftxt, font=sans, fontsize=hsize)
        tw.write_text(page)
    return doc


# --------------------------------------------------------------------------
# Post-processing and saving
# --------------------------------------------------------------------------


def scan_page(doc: pymupdf.Document, pno: int, dpi: int = 110) -> None:
    """Replace page pno by a greyscale JPEG image of itself (no text layer)."""
    src = doc[pno]
    rect = src.rect
    pix = src.get_pixmap(dpi=dpi, colorspace=pymupdf.csGRAY, alpha=False)
    img = pix.tobytes("jpg", jpg_quality=70)
    doc.delete_page(pno)
    page = doc.new_page(pno, width=rect.width, height=rect.height)
    page.insert_image(page.rect, stream=img)


def finish(doc: pymupdf.Document, title: str) -> None:
    doc.set_metadata(
        {
            "title": title,
            "author": "hpc-lm sample data",
            "subject": "High-performance computing",
            "keywords": "HPC, sample",
            "creator": "data/sample/build_pdfs.py",
            "producer": "PyMuPDF",
            "creationDate": FIXED_DATE,
            "modDate": FIXED_DATE,
            "trapped": "",
        }
    )
    try:
        doc.del_xml_metadata()
    except Exception:
        pass
    try:
        doc.subset_fonts()
    except Exception as exc:  # subsetting is an optimisation only
        print(f"  (font subsetting skipped: {exc})", file=sys.stderr)


SAVE_OPTS = dict(garbage=4, deflate=True, deflate_images=True, deflate_fonts=True, use_objstms=True, no_new_id=True)


def to_bytes(doc: pymupdf.Document, **extra) -> bytes:
    opts = dict(SAVE_OPTS, **extra)
    try:
        return doc.tobytes(reproducible=True, **opts)
    except TypeError:  # PyMuPDF without the 'reproducible' flag
        return doc.tobytes(**opts)


def encrypted_bytes(doc: pymupdf.Document, out: Path) -> bytes | None:
    """Encrypt with the user password; return None if `out` is already current.

    MuPDF draws a random /ID (and AES a random IV) for every encrypted save, so
    encrypted output is never byte-identical between runs. To keep reruns
    stable, the SHA-256 of the unencrypted (deterministic) build is stored in
    the encrypted file's Keywords, and an existing file whose fingerprint
    matches is left untouched.
    """
    fingerprint = "build-sha256:" + hashlib.sha256(to_bytes(doc)).hexdigest()
    if out.is_file():
        try:
            old = pymupdf.open(out)
            if old.needs_pass and old.authenticate(USER_PASSWORD):
                if fingerprint in (old.metadata.get("keywords") or ""):
                    old.close()
                    return None
            old.close()
        except Exception:
            pass
    meta = dict(doc.metadata)
    meta["keywords"] = f"{meta.get('keywords', '')}; {fingerprint}"
    doc.set_metadata({k: v for k, v in meta.items() if k != "format" and k != "encryption"})
    return to_bytes(
        doc,
        encryption=pymupdf.PDF_ENCRYPT_AES_256,
        owner_pw=OWNER_PASSWORD,
        user_pw=USER_PASSWORD,
        permissions=int(pymupdf.PDF_PERM_PRINT | pymupdf.PDF_PERM_COPY | pymupdf.PDF_PERM_ACCESSIBILITY),
    )


def geometry_for(opts: dict) -> Geometry:
    if opts.get("columns", 1) == 2:
        return Geometry(432, 576, 40, 62, 56, columns=2, gutter=16, body_size=9.0, leading=11.8)
    if opts.get("line_numbers"):
        return Geometry(396, 612, 58, 64, 60, body_size=10.0, leading=14.5)
    return Geometry(396, 612, 54, 64, 60, body_size=10.5, leading=14.0)


def build_one(src: Path, fonts) -> tuple[Path, int]:
    stem = src.stem
    opts = SPECIAL.get(stem, {})
    text = src.read_text(encoding="utf-8")
    blocks = parse_markdown(text) if src.suffix == ".md" else parse_text(text)
    title = next((b.text for b in blocks if b.kind == "title"), stem)
    geo = geometry_for(opts)
    doc = render(stem, blocks, fonts, geo, opts)
    if doc.page_count < 3:
        raise RuntimeError(f"{stem}: only {doc.page_count} pages")

    if "duplicate" in opts:
        p = opts["duplicate"]
        doc.fullcopy_page(p, p + 1)
    if opts.get("scan_all"):
        for p in range(doc.page_count):
            scan_page(doc, p)
    for p in opts.get("scan_pages", []):
        scan_page(doc, p)

    finish(doc, title)
    out = OUT_DIR / f"{stem}.pdf"
    if opts.get("encrypt"):
        data = encrypted_bytes(doc, out)
    else:
        data = to_bytes(doc)
    pages = doc.page_count
    doc.close()
    if opts.get("truncate"):
        data = data[: len(data) // 2]
    if data is not None:
        out.write_bytes(data)
    return out, pages


def write_text_fixtures() -> None:
    """Deliberately bad inputs for the cleaner: an empty file and binary junk."""
    (TEXT_DIR / "empty.txt").write_bytes(b"")
    rng = random.Random(20240101)
    junk = bytes(rng.getrandbits(8) for _ in range(2048))
    (TEXT_DIR / "corrupt-notes.md").write_bytes(b"\x00\xff" + junk[2:])


def main() -> int:
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    TEXT_DIR.mkdir(parents=True, exist_ok=True)
    fonts = load_fonts()
    sources = sorted(p for p in SRC_DIR.iterdir() if p.suffix in {".md", ".txt"})
    expected = {f"{p.stem}.pdf" for p in sources}
    for stale in OUT_DIR.glob("*.pdf"):
        if stale.name not in expected:
            stale.unlink()
    for src in sources:
        out, pages = build_one(src, fonts)
        flags = ",".join(k for k in SPECIAL.get(src.stem, {}) if k != "chapter") or "-"
        print(f"{out.relative_to(HERE.parent.parent)}  pages={pages}  size={out.stat().st_size}  [{flags}]")
    write_text_fixtures()
    return 0


if __name__ == "__main__":
    sys.exit(main())
