"""Clean: PDF layout rules on PDFs built with PyMuPDF at test time."""
from __future__ import annotations

from collections import Counter

import pymupdf
import pytest

from lib.clean.pdf import extract_pdf

LEFT = ["The memory hierarchy of a modern node is deep and the",
        "cost of a cache miss grows with every level that the",
        "request has to traverse before the data is found in a",
        "structure that is far away from the requesting core."]
RIGHT = ["Blocking the loops keeps the working set in cache so",
         "that every line which is brought in is used many",
         "times before it is evicted again by the replace-",
         "ment policy of the last level cache of the socket."]


def two_column_pdf(pages: int = 4, duplicate_last: bool = False) -> bytes:
    """Lines written row by row across both columns (so MuPDF blocks straddle the columns),
    with a running header, a page number, and margin line numbers."""
    doc = pymupdf.open()
    for n in range(1, pages + 1):
        page = doc.new_page(width=612, height=792)
        page.insert_text((72, 40), f"Journal of Parallel Computing, Volume {n + 2}", fontsize=9)
        page.insert_text((72, 105), f"Section {n}", fontsize=14)
        for i, (left, right) in enumerate(zip(LEFT, RIGHT)):
            y = 130 + 12 * i
            page.insert_text((72, y), f"{left}" if i < 3 else f"{left} P{n}.", fontsize=9)
            page.insert_text((320, y), right, fontsize=9)
            page.insert_text((30, y), str(i + 1 + 4 * (n - 1)), fontsize=7)
        page.insert_text((300, 760), f"- {n} -", fontsize=9)
    if duplicate_last:
        doc.fullcopy_page(pages - 1)
    return doc.tobytes()


def test_columns_headers_page_and_line_numbers_hyphens():
    stats = Counter()
    got = extract_pdf(two_column_pdf(), stats)
    assert got.reason is None
    paragraphs = got.text.split("\n\n")
    assert paragraphs[:3] == [
        "# Section 1",
        " ".join(LEFT) + " P1.",
        "Blocking the loops keeps the working set in cache so that every line which is brought in "
        "is used many times before it is evicted again by the replacement policy of the last "
        "level cache of the socket."]
    assert "Journal" not in got.text and "- 2 -" not in got.text
    assert not any(ch.isdigit() for ch in got.text.replace("P1", "").replace("P2", "").replace(
        "P3", "").replace("P4", "").replace("Section 1", "").replace("Section 2", "").replace(
        "Section 3", "").replace("Section 4", ""))
    assert stats["pdf_line_numbers_removed"] == 16
    assert stats["pdf_page_numbers_removed"] == 4
    assert stats["pdf_running_lines_removed"] == 4
    assert stats["pdf_hyphens_joined"] == 4
    assert stats["pdf_two_column_bands"] == 4


def test_running_header_needs_enough_pages():
    got = extract_pdf(two_column_pdf(pages=2), Counter(), min_pages=3)
    assert "Journal of Parallel Computing" in got.text


def test_duplicated_page_is_dropped():
    stats = Counter()
    got = extract_pdf(two_column_pdf(pages=3, duplicate_last=True), stats)
    assert stats["pdf_duplicate_pages_removed"] == 1
    assert got.text.count("P3.") == 1


def test_paragraph_continues_across_pages():
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 100), "The sentence starts on one page and is cut by the",
                               fontsize=10)
    doc.new_page().insert_text((72, 100), "page break halfway through.", fontsize=10)
    stats = Counter()
    got = extract_pdf(doc.tobytes(), stats)
    assert got.text == "The sentence starts on one page and is cut by the page break halfway through."
    assert stats["pdf_breaks_rejoined"] == 1


def test_monospace_lines_stay_code():
    doc = pymupdf.open()
    page = doc.new_page()
    page.insert_text((72, 100), "Compile and run the following loop:", fontsize=10)
    page.insert_text((72, 130), "for (i = 0; i < n; i++) {", fontname="cour", fontsize=10)
    page.insert_text((96, 142), "a[i] = b[i];", fontname="cour", fontsize=10)
    page.insert_text((72, 154), "}", fontname="cour", fontsize=10)
    got = extract_pdf(doc.tobytes(), Counter())
    assert got.text == ("Compile and run the following loop:\n\n```\nfor (i = 0; i < n; i++) {\n"
                        "    a[i] = b[i];\n}\n```")


def _image_page(doc):
    pix = pymupdf.Pixmap(pymupdf.csRGB, pymupdf.IRect(0, 0, 32, 32), False)
    pix.clear_with(200)
    doc.new_page().insert_image(pymupdf.Rect(50, 50, 300, 300), pixmap=pix)


def test_scanned_pages_detected_and_counted():
    doc = pymupdf.open()
    _image_page(doc)
    _image_page(doc)
    stats = Counter()
    assert extract_pdf(doc.tobytes(), stats).reason == "pdf_scanned"
    assert stats["pdf_scanned_pages"] == 2
    doc.new_page().insert_text((72, 100), "One page with a text layer.")
    stats = Counter()
    got = extract_pdf(doc.tobytes(), stats)
    assert got.reason is None and got.text == "One page with a text layer."
    assert stats["pdf_scanned_pages"] == 2


@pytest.mark.parametrize("kind", ["encrypted", "truncated", "garbage", "blank"])
def test_bad_pdfs_are_reported(kind):
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 100), "secret text " * 20)
    data = doc.tobytes()
    if kind == "encrypted":
        data = doc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="pw", owner_pw="owner")
        expected = "pdf_encrypted"
    elif kind == "truncated":
        data, expected = data[: len(data) // 3], "pdf_corrupt"
    elif kind == "garbage":
        data, expected = b"%PDF-1.7\n" + bytes(range(256)) * 8, "pdf_corrupt"
    else:
        blank = pymupdf.open()
        blank.new_page()
        data, expected = blank.tobytes(), "empty"
    assert extract_pdf(data, Counter()).reason == expected


def test_hyphen_kept_when_the_document_uses_the_compound():
    doc = pymupdf.open()
    page = doc.new_page()
    lines = ["Stencil codes are usually memory-bound on CPUs, and the", "same kernel is memory-",
             "bound on GPUs as well; the replace-", "ment policy matters less."]
    for i, line in enumerate(lines):
        page.insert_text((72, 100 + 12 * i), line, fontsize=10)
    stats = Counter()
    got = extract_pdf(doc.tobytes(), stats)
    assert "is memory-bound on GPUs" in got.text and "the replacement policy" in got.text
    assert stats["pdf_hyphens_kept"] == 1 and stats["pdf_hyphens_joined"] == 1


HELV, COUR = pymupdf.Font("helv"), pymupdf.Font("cour")


def put(page, xy, text: str, size: float, mono: bool = False) -> None:
    """Text through a TextWriter, which keeps the Base-14 font's bullet (insert_text's simple
    encoding turns it into a middle dot)."""
    tw = pymupdf.TextWriter(page.rect)
    tw.append(xy, text, font=COUR if mono else HELV, fontsize=size)
    tw.write_text(page)


def powerpoint_like_deck() -> bytes:
    """Three 16:9 slides laid out the way PowerPoint exports them (coordinates from FZJ-JSC's
    multi-GPU tutorial deck): each bullet a glyph of its own left of its text, sub-bullets
    further right, a wrapped bullet's second line under its text; bullets set larger than the
    body; bullets beside a listing, the gutter left of the middle, identifiers in the prose."""
    doc = pymupdf.open()
    p = doc.new_page(width=960, height=540)
    put(p, (102, 140), "Motivation", 22)
    rows = [(0, "MPI is not (yet) aware of CUDA streams"),
            (0, "Explicit synchronization between kernels and MPI calls is required"),
            (0, "For better efficiency: CUDA-stream-aware communication"),
            (1, "Communication which is aware of CUDA streams"),
            (1, "NCCL and the host API of NVSHMEM"),
            (0, "Library for efficient communication"), (None, "with GPUs")]
    for i, (level, text) in enumerate(rows):
        shift, y = 36 * (level or 0), 180 + 20.4 * i
        if level is not None:
            put(p, (111.5 + shift, y), "\u2022", 17)
        put(p, (138 + shift, y), text, 17)
    p = doc.new_page(width=960, height=540)
    put(p, (102, 140), "So far we learned about", 22)
    for i, text in enumerate(["CUDA-Aware MPI", "How to debug, profile and trace your code"]):
        put(p, (111.5, 190 + 43 * i), "\u2022 " + text, 24)
    p = doc.new_page(width=960, height=540)
    put(p, (39, 105), "Fused Communication Calls", 22)
    put(p, (38, 140), "\u2022", 17)
    for i, (text, mono) in enumerate([("Multiple calls to ncclSend() and", False),
                                      ("ncclRecv()", True), ("should be fused with", False),
                                      ("ncclGroupEnd() to avoid deadlocks.", False)]):
        put(p, (65, 140 + 24 * i), text, 20, mono)
    put(p, (416, 131), "Bcast:", 14)
    code = [(0, "ncclGroupStart();"), (0, "if (rank == root) {"),
            (2, "for (int r=0; r<nranks; r++)"),
            (4, "ncclSend(sendbuff[r], size, type, r, comm, stream);}"), (0, "ncclGroupEnd();")]
    for i, (indent, text) in enumerate(code):
        put(p, (415 + 7.2 * indent, 155 + 18.7 * i), text, 12, True)
    return doc.tobytes()


def test_powerpoint_like_bullets_titles_columns_and_listing():
    stats = Counter()
    got = extract_pdf(powerpoint_like_deck(), stats)
    assert got.deck
    assert got.text == (
        "## Motivation\n\n"
        "- MPI is not (yet) aware of CUDA streams\n"
        "- Explicit synchronization between kernels and MPI calls is required\n"
        "- For better efficiency: CUDA-stream-aware communication\n"
        "  - Communication which is aware of CUDA streams\n"
        "  - NCCL and the host API of NVSHMEM\n"
        "- Library for efficient communication with GPUs\n\n"
        "## So far we learned about\n\n"
        "- CUDA-Aware MPI\n- How to debug, profile and trace your code\n\n"
        "## Fused Communication Calls\n\n"
        "- Multiple calls to ncclSend() and ncclRecv() should be fused with ncclGroupEnd() to "
        "avoid deadlocks.\n\n"
        "Bcast:\n\n"
        "```\nncclGroupStart();\nif (rank == root) {\n  for (int r=0; r<nranks; r++)\n"
        "    ncclSend(sendbuff[r], size, type, r, comm, stream);}\nncclGroupEnd();\n```")
    assert stats["pdf_bullet_glyphs"] == 7


def test_symbol_font_bullet_attached_and_table_rows_read_across():
    """U+F0A7 is where MuPDF puts PowerPoint's Wingdings square; on a slide, two columns whose
    lines share baselines are a table, read row by row, not column by column."""
    from lib.clean.pdf_lines import Line, _attach_markers, reading_order
    stats = Counter()
    text = Line(138.1, 165.6, 472.0, 184.6, "MPI is not aware of streams", False, 17)
    lines = _attach_markers([text, Line(111.5, 165.7, 119.3, 184.5, "\uf0a7", False, 17)], stats)
    assert [ln.text for ln in lines] == ["\u2022 MPI is not aware of streams"]
    assert lines[0].x0 == 138.1 and stats["pdf_bullet_glyphs"] == 1
    rows = [Line(100, 100 + 20 * i, 180, 115 + 20 * i, f"MPI_Op{i}", False, 14) for i in range(4)]
    rows += [Line(260, 100 + 20 * i, 420, 115 + 20 * i, f"reduction {i}", False, 14)
             for i in range(4)]
    order = [ln.text for ln in reading_order(rows, 960, 540, Counter(), slide=True)]
    assert order[:4] == ["MPI_Op0", "reduction 0", "MPI_Op1", "reduction 1"]
