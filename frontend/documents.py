"""PDF uploads: check the file, pick the pages to send, render each page as one image of the image budget.

Pages are rendered with PDFium (pypdfium2, in-process) straight at the size the server's processor would pick
for the budget (sides multiples of 32), so nothing is rendered at a high DPI only to be downscaled, and a page
of any physical size costs the same bounded pixels. Only the pages sent are rendered: a 500-page PDF costs its
page count, not 500 renders. No Streamlit here.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

import pypdfium2 as pdfium
import pypdfium2.raw as pdfium_c
from PIL import Image

from frontend.conversation import ImageAttachment
from frontend.images import FACTOR, ImageRejected, attachment_from_image, megabytes, target_size

PDF_SIGNATURE = b"%PDF-"
SIGNATURE_WINDOW = 1024  # PDF readers accept the header anywhere in the first KB
POINTS_PER_INCH = 72
# PDFium is not thread-safe, and Streamlit runs each browser session's script in its own thread.
_PDFIUM = threading.Lock()
_RANGE = re.compile(r"^\s*(\d+)\s*(?:[-–]\s*(\d+)\s*)?$")


class DocumentRejected(ValueError):
    """A PDF (or a page range) that cannot be used; str(error) is a complete sentence for the page."""


@dataclass(frozen=True)
class PdfFile:
    """An uploaded PDF that PDFium opens: its bytes (kept to render other pages later) and its page count."""

    name: str
    data: bytes
    page_count: int


@dataclass(frozen=True)
class RenderedPages:
    """The pages of `document` that go with one message, as images, and the pages that were asked for."""

    document: PdfFile
    pages: list[int]  # 1-based, the ones rendered and sent
    asked: list[int]  # 1-based, what the message wanted (the whole PDF, or the typed range)
    images: list[ImageAttachment]

    def notice(self, endpoint: str, image_limit: int, *, other_images: int = 0) -> str:
        """What the user should know: which pages were sent, and how to get the others (Markdown: the page
        draws it like an answer, so a file name cannot load an image)."""
        name, count = self.document.name, self.document.page_count
        sent = f"{name}: {_pages_word(self.pages)} {page_span(self.pages)} of {count} sent, one image each."
        left = self.asked[len(self.pages) :]
        if not left:
            return sent
        besides = f" (this one also has {other_images} other image(s))" if other_images else ""
        return (
            f"{sent} {endpoint} takes at most {image_limit} image(s) per message{besides}, so "
            f"{_pages_word(left)} {page_span(left)} {'was' if len(left) == 1 else 'were'} not sent: type the "
            f"pages you want in **Pages** (e.g. {_next_range(left, image_limit)}) and send a message to ask "
            "about them."
        )


@dataclass
class AttachedPdf:
    """The PDF a chat has at hand: uploaded once, its pages sent a range at a time."""

    document: PdfFile
    due: bool = True  # just uploaded: its first pages go with the next message
    sent: list[int] = field(default_factory=list)  # the pages the last message with it sent

    def wanted(self, typed: str) -> list[int] | None:
        """Pages the next message asks for: the typed range, else (just uploaded) the whole PDF from page 1;
        None when nothing of it is due."""
        if typed.strip():
            return parse_pages(typed, self.document.page_count)
        return list(range(1, self.document.page_count + 1)) if self.due else None

    def pages_for_message(
        self, typed: str, *, room: int, endpoint: str, image_limit: int, token_budget: int
    ) -> RenderedPages | None:
        """Render what the next message sends of this PDF into the `room` left by its images (the tightest
        endpoint's `image_limit` minus those); DocumentRejected for a bad range or no room at all."""
        wanted = self.wanted(typed)
        if wanted is None:
            return None
        if room < 1:
            raise DocumentRejected(
                f"No room for pages of {self.document.name}: {endpoint} takes at most {image_limit} image(s) per "
                "message and this one already has that many. Send the images first, or discard some of them."
            )
        return render_pages(self.document, wanted, room=room, token_budget=token_budget)

    def was_sent(self, rendered: RenderedPages) -> None:
        self.due, self.sent = False, list(rendered.pages)


def is_pdf(name: str, mime_type: str | None, data: bytes) -> bool:
    """An upload the page treats as a document: named, typed or shaped like a PDF."""
    return (
        name.lower().endswith(".pdf")
        or mime_type == "application/pdf"
        or PDF_SIGNATURE in data[:SIGNATURE_WINDOW]
    )


def open_pdf(data: bytes, name: str, *, max_bytes: int) -> PdfFile:
    """The upload as a PdfFile, or DocumentRejected saying what is wrong with it and what to do."""
    label = name.strip() or "The PDF"
    if not data:
        raise DocumentRejected(f"{label} is empty (0 bytes); choose the file again.")
    if len(data) > max_bytes:
        size, limit = megabytes(len(data)), megabytes(max_bytes)
        raise DocumentRejected(
            f"{label} is {'over ' if size == limit else ''}{size}; the limit is {limit} per file "
            "(FRONTEND_MAX_UPLOAD_MB): split it, or save only the pages you need, and upload that."
        )
    if PDF_SIGNATURE not in data[:SIGNATURE_WINDOW]:
        raise DocumentRejected(f"{label} is not a PDF (it has no PDF header); choose the PDF itself.")
    with _PDFIUM:
        # PDFium's own calls, not PdfDocument: that one refuses a document without pages and reports the last
        # error code PDFium set, which for an empty page tree is whatever an earlier upload failed with.
        handle = pdfium_c.FPDF_LoadMemDocument64(data, len(data), None)
        if not handle:
            raise DocumentRejected(_open_error(label, pdfium_c.FPDF_GetLastError()))
        try:
            page_count = pdfium_c.FPDF_GetPageCount(handle)
        finally:
            pdfium_c.FPDF_CloseDocument(handle)
    if page_count < 1:
        raise DocumentRejected(f"{label} has no pages; export it again from the program that made it.")
    return PdfFile(name=name, data=data, page_count=page_count)


def _open_error(label: str, code: int | None) -> str:
    if code == pdfium_c.FPDF_ERR_PASSWORD:
        return (
            f"{label} is encrypted (password-protected); the page does not ask for passwords. Open it, save or "
            "print an unprotected copy, and upload that."
        )
    if code == pdfium_c.FPDF_ERR_SECURITY:
        return (
            f"{label} is protected with a security scheme PDFium cannot open; save or print an unprotected copy "
            "and upload that."
        )
    return f"{label} is truncated or corrupt; export it again (or save it again) and upload it again."


def parse_pages(text: str, page_count: int) -> list[int]:
    """'3-6', '2, 5, 7-9' -> 1-based page numbers in the order typed, without repeats; DocumentRejected
    (saying what to type) for anything else or a page the PDF does not have."""
    pages: list[int] = []
    seen: set[int] = set()
    for part in text.split(","):
        match = _RANGE.match(part)
        if match is None:
            raise DocumentRejected(
                f"“{text.strip()}” is not a list of pages: type page numbers or ranges such as 3-6 or 2, 5, 7-9 "
                f"(the PDF has {page_count} page(s))."
            )
        first = int(match[1])
        last = int(match[2]) if match[2] else first
        if first > last:
            raise DocumentRejected(f"The range {first}-{last} runs backwards: type it as {last}-{first}.")
        if first < 1 or last > page_count:
            raise DocumentRejected(
                f"The PDF has pages 1-{page_count}; {part.strip()} is outside them: type pages within 1-{page_count}."
            )
        pages.extend(page for page in range(first, last + 1) if page not in seen)
        seen.update(range(first, last + 1))
    return pages


def render_pages(
    document: PdfFile, asked: Sequence[int] | None, *, room: int, token_budget: int
) -> RenderedPages:
    """Render the first `room` of the `asked` pages (default: the whole PDF, from page 1), each one image
    within `token_budget`. Pages beyond `room` are not rendered (not even opened)."""
    wanted = list(asked) if asked is not None else list(range(1, document.page_count + 1))
    sending = wanted[: max(room, 0)]
    images = []
    with _PDFIUM:
        pdf = pdfium.PdfDocument(document.data)
        try:
            for number in sending:
                images.append(_render_page(pdf, document, number, token_budget))
        finally:
            pdf.close()
    return RenderedPages(document=document, pages=sending, asked=wanted, images=images)


def _render_page(
    pdf: pdfium.PdfDocument, document: PdfFile, number: int, token_budget: int
) -> ImageAttachment:
    label = f"Page {number} of {document.name}"
    try:
        page = pdf[number - 1]
    except pdfium.PdfiumError as error:  # the page tree names it, but its object is missing or broken
        raise DocumentRejected(
            f"{label} cannot be read (the file is damaged there); pick other pages, or export the PDF again."
        ) from error
    try:
        width_pt, height_pt = page.get_size()  # the displayed size, /Rotate applied
        width, height = max(1, round(width_pt)), max(1, round(height_pt))  # 72 dpi: one point, one pixel
        # Vector pages have no resolution of their own: fill the budget (a Letter page at 72 dpi would be
        # 475 tokens of 10-pixel text), never more (a 20,000-point poster still renders at the budget).
        scale = max(1.0, math.sqrt(token_budget * FACTOR * FACTOR / (width * height)))
        try:
            size = target_size(math.ceil(width * scale), math.ceil(height * scale), token_budget, label)
        except ImageRejected as error:
            raise DocumentRejected(str(error)) from error
        image = _render(page, size)
    finally:
        page.close()
    dpi = size[0] / max(width_pt, 1.0) * POINTS_PER_INCH
    note = (
        f"page {number} of {document.page_count}, {width_pt:.0f}×{height_pt:.0f} pt rendered at {dpi:.0f} dpi"
    )
    return attachment_from_image(
        image, f"{document.name} · page {number}", original_size=(width, height), notes=[note]
    )


def _render(page: pdfium.PdfPage, size: tuple[int, int]) -> Image.Image:
    """The page drawn (annotations included) on white into a bitmap of exactly `size`: PDFium scales the page
    to it, so the only resampling is PDFium's own rasterisation at the target resolution."""
    width, height = size
    bitmap = pdfium.PdfBitmap.new_native(width, height, pdfium_c.FPDFBitmap_BGR, rev_byteorder=True)
    bitmap.fill_rect((255, 255, 255, 255), 0, 0, width, height)
    flags = pdfium_c.FPDF_ANNOT | pdfium_c.FPDF_REVERSE_BYTE_ORDER
    pdfium_c.FPDF_RenderPageBitmap(bitmap, page, 0, 0, width, height, 0, flags)
    return bitmap.to_pil().copy()  # the bitmap's buffer goes when the bitmap does


def page_span(pages: Sequence[int]) -> str:
    """[1, 2, 3, 7, 9, 10] -> '1–3, 7, 9–10'."""
    runs: list[list[int]] = []
    for page in pages:
        if runs and page == runs[-1][-1] + 1:
            runs[-1].append(page)
        else:
            runs.append([page])
    return ", ".join(str(run[0]) if len(run) == 1 else f"{run[0]}–{run[-1]}" for run in runs)


def _pages_word(pages: Sequence[int]) -> str:
    return "page" if len(pages) == 1 else "pages"


def _next_range(pages: Sequence[int], limit: int) -> str:
    following = pages[: max(limit, 1)]
    return str(following[0]) if len(following) == 1 else f"{following[0]}-{following[-1]}"
