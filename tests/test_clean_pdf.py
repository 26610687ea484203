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
