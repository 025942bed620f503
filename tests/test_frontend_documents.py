"""frontend/documents.py: PDFs checked, page ranges read, pages rendered at the image budget. PDFs written by
tests/helpers/pdfs.py, opened and rendered by the real PDFium (no Streamlit, no server)."""

from __future__ import annotations

import io

import pypdfium2 as pdfium
import pytest
from PIL import Image

from frontend import documents
from frontend.documents import (
    DocumentRejected,
    PdfFile,
    is_pdf,
    open_pdf,
    page_span,
    parse_pages,
    render_pages,
)
from frontend.images import FACTOR
from tests.helpers.pdfs import damaged_page_pdf, pdf_bytes, scanned_pdf, zero_page_pdf

MAX_BYTES = 20 * 1024 * 1024
BUDGET = 1280


def opened(data: bytes, name: str = "report.pdf") -> PdfFile:
    return open_pdf(data, name, max_bytes=MAX_BYTES)


def rejected(data: bytes, name: str = "report.pdf", **options: int) -> str:
    with pytest.raises(DocumentRejected) as caught:
        open_pdf(data, name, max_bytes=options.get("max_bytes", MAX_BYTES))
    return str(caught.value)


def test_a_pdf_opens_with_its_page_count_and_its_bytes_kept() -> None:
    data = pdf_bytes(3)
    document = opened(data)
    assert (document.name, document.page_count, document.data) == ("report.pdf", 3, data)


def test_uploads_are_recognised_as_pdfs_by_name_type_or_header() -> None:
    assert is_pdf("Report.PDF", None, b"")
    assert is_pdf("scan", "application/pdf", b"")
    assert is_pdf("scan.bin", None, b"\n\n" + pdf_bytes(1))
    assert not is_pdf("photo.png", "image/png", b"\x89PNG\r\n\x1a\n")


def test_an_encrypted_pdf_is_refused_as_encrypted_without_asking_for_a_password() -> None:
    data = pdf_bytes(2, password="secret")
    assert (
        len(pdfium.PdfDocument(data, password="secret")) == 2
    )  # a real encrypted PDF: the password opens it
    message = rejected(data)
    assert message.startswith("report.pdf is encrypted (password-protected)")
    assert "unprotected copy" in message


def test_a_pdf_without_pages_is_said_to_have_none_whatever_failed_before() -> None:
    rejected(pdf_bytes(1, password="secret"))  # PDFium's last error is now "password"
    assert rejected(zero_page_pdf(), "empty.pdf") == (
        "empty.pdf has no pages; export it again from the program that made it."
    )


@pytest.mark.parametrize(
    "data",
    [pdf_bytes(3)[:200], b"%PDF-1.4\n" + b"garbage " * 100, pdf_bytes(3)[:-300]],
    ids=["cut-after-200-bytes", "garbage-after-the-header", "cross-reference-table-cut-off"],
)
def test_a_truncated_or_corrupt_pdf_is_refused_as_such(data: bytes) -> None:
    assert rejected(data) == (
        "report.pdf is truncated or corrupt; export it again (or save it again) and upload it again."
    )


def test_empty_oversized_and_not_pdf_files_are_refused_with_what_to_do() -> None:
    assert rejected(b"") == "report.pdf is empty (0 bytes); choose the file again."
    assert rejected(pdf_bytes(1) + b"%" * 2**20, max_bytes=2**20) == (
        "report.pdf is over 1 MB; the limit is 1 MB per file (FRONTEND_MAX_UPLOAD_MB): split it, or save only the "
        "pages you need, and upload that."
    )
    assert rejected(b"hello, this is text") == (
        "report.pdf is not a PDF (it has no PDF header); choose the PDF itself."
    )


def test_pages_are_rendered_at_the_image_budget_not_at_72_dpi() -> None:
    rendered = render_pages(opened(pdf_bytes(2)), None, room=4, token_budget=BUDGET)
    assert rendered.pages == rendered.asked == [1, 2]
    for number, image in enumerate(rendered.images, start=1):
        assert image.width % FACTOR == 0 and image.height % FACTOR == 0
        assert BUDGET * 0.9 <= image.tokens <= BUDGET  # fills the budget, never over it
        assert image.name == f"report.pdf · page {number}"
        assert image.notes == [f"page {number} of 2, 612×792 pt rendered at 117 dpi"]
        decoded = Image.open(io.BytesIO(image.data))
        assert decoded.size == (image.width, image.height)
        assert decoded.convert("L").getextrema() == (0, 255)  # black text on white: the page was drawn


def test_only_the_pages_that_fit_are_rendered_and_the_notice_says_which_and_how_to_pick_others() -> None:
    rendered = render_pages(opened(pdf_bytes(12)), None, room=4, token_budget=BUDGET)
    assert rendered.pages == [1, 2, 3, 4] and len(rendered.images) == 4
    assert rendered.notice("Tiny A", 4) == (
        "report.pdf: pages 1–4 of 12 sent, one image each. Tiny A takes at most 4 image(s) per message, so "
        "pages 5–12 were not sent: type the pages you want in **Pages** (e.g. 5-8) and send a message to ask "
        "about them."
    )


def test_a_picked_range_renders_those_pages_and_a_whole_pdf_that_fits_says_so() -> None:
    document = opened(pdf_bytes(12))
    rendered = render_pages(document, parse_pages("7-9", 12), room=4, token_budget=BUDGET)
    assert rendered.pages == [7, 8, 9]
    assert [image.notes[0].split(",")[0] for image in rendered.images] == [
        "page 7 of 12",
        "page 8 of 12",
        "page 9 of 12",
    ]
    assert rendered.notice("Tiny A", 4) == "report.pdf: pages 7–9 of 12 sent, one image each."


def test_no_room_renders_nothing() -> None:
    rendered = render_pages(opened(pdf_bytes(3)), None, room=0, token_budget=BUDGET)
    assert rendered.pages == [] and rendered.images == [] and rendered.asked == [1, 2, 3]


def test_a_500_page_pdf_renders_only_the_pages_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    drawn: list[tuple[int, int]] = []
    real_render = documents._render

    def counting_render(page: pdfium.PdfPage, size: tuple[int, int]) -> Image.Image:
        drawn.append(size)
        return real_render(page, size)

    monkeypatch.setattr(documents, "_render", counting_render)  # the real renderer, counted
    document = opened(pdf_bytes(500))
    assert document.page_count == 500 and not drawn  # counting pages renders none
    rendered = render_pages(document, None, room=4, token_budget=BUDGET)
    assert rendered.pages == [1, 2, 3, 4] and len(rendered.images) == 4
    assert len(drawn) == 4  # benchmarks/pdf_render.py measures how long that takes


def test_a_20000_point_page_renders_within_the_pixel_budget() -> None:
    rendered = render_pages(opened(pdf_bytes(1, size=(20000, 20000))), None, room=1, token_budget=BUDGET)
    [image] = rendered.images
    assert image.tokens <= BUDGET and image.width == image.height == 1120
    assert (image.original_width, image.original_height) == (20000, 20000)
    assert image.notes == ["page 1 of 1, 20000×20000 pt rendered at 4 dpi"]


def test_a_page_too_elongated_for_the_model_is_refused_naming_the_page() -> None:
    document = opened(pdf_bytes(sizes=[(612, 792), (14400, 36)]))
    with pytest.raises(DocumentRejected, match=r"^Page 2 of report\.pdf is .* more elongated than the 200:1"):
        render_pages(document, [2], room=1, token_budget=BUDGET)


def test_a_damaged_page_is_refused_naming_it_and_the_other_pages_still_render() -> None:
    document = opened(damaged_page_pdf())
    assert document.page_count == 2
    with pytest.raises(DocumentRejected) as caught:
        render_pages(document, None, room=2, token_budget=BUDGET)
    assert str(caught.value) == (
        "Page 2 of report.pdf cannot be read (the file is damaged there); pick other pages, or export the PDF again."
    )
    assert render_pages(document, [1], room=1, token_budget=BUDGET).pages == [1]


def test_a_range_of_every_page_of_a_huge_pdf_is_read_at_once() -> None:
    assert parse_pages("1-200000, 5", 200_000) == list(range(1, 200_001))  # no quadratic duplicate check


def test_a_scanned_table_renders_readably() -> None:
    rendered = render_pages(
        opened(scanned_pdf([["Quarter", "Revenue"], ["Q1", "10"]])), None, room=1, token_budget=BUDGET
    )
    [image] = rendered.images
    assert image.notes == ["page 1 of 1, 595×842 pt rendered at 116 dpi"]  # A4 from Pillow's PDF writer
    grey = Image.open(io.BytesIO(image.data)).convert("L")
    table_corner = grey.crop((0, 0, image.width // 2, image.height // 8))
    assert table_corner.getextrema()[0] < 64  # the table's black lines are there


@pytest.mark.parametrize(
    ("typed", "pages"),
    [("3-6", [3, 4, 5, 6]), ("2, 5, 7-9", [2, 5, 7, 8, 9]), (" 4 ", [4]), ("2,2,1", [2, 1]), ("3–4", [3, 4])],
)
def test_page_ranges_are_read_in_the_order_typed(typed: str, pages: list[int]) -> None:
    assert parse_pages(typed, 12) == pages


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("6-3", "The range 6-3 runs backwards: type it as 3-6."),
        ("0", "The PDF has pages 1-12; 0 is outside them: type pages within 1-12."),
        ("10-13", "The PDF has pages 1-12; 10-13 is outside them: type pages within 1-12."),
        (
            "three",
            "“three” is not a list of pages: type page numbers or ranges such as 3-6 or 2, 5, 7-9 "
            "(the PDF has 12 page(s)).",
        ),
        ("1,,2", "“1,,2” is not a list of pages"),
    ],
)
def test_bad_page_ranges_say_what_to_type(typed: str, message: str) -> None:
    with pytest.raises(DocumentRejected) as caught:
        parse_pages(typed, 12)
    assert str(caught.value).startswith(message)


def test_page_spans_are_written_as_ranges() -> None:
    assert page_span([1, 2, 3, 7, 9, 10]) == "1–3, 7, 9–10"
    assert page_span([5]) == "5"
