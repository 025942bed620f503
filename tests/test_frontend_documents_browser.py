"""A PDF in the chat page in real Chromium against the real tiny vLLM: uploaded through the chat input's file
chooser, its first pages shown as thumbnails and answered, then other pages picked in the Pages field."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.helpers.browser import WAIT_MS, ask, expect_answered, idle, messages, open_chat, start_chat_page
from tests.helpers.pdfs import pdf_bytes
from tests.helpers.streamlit_app import StreamlitApp

pytestmark = pytest.mark.vllm


@pytest.fixture(scope="module")
def pdf_app(tiny_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamlitApp]:
    endpoint = {
        "name": "Tiny A",
        "base_url": tiny_server.base_url,
        "api_key": tiny_server.api_key,
        "image_limit": tiny_server.image_limit,
    }
    # Pages of 256 tokens: two of them and the answer fit the tiny server's 2048-token context.
    app = start_chat_page(
        tmp_path_factory.mktemp("pdf-page"),
        [endpoint],
        FRONTEND_MAX_TOKENS="24",
        FRONTEND_IMAGE_TOKEN_BUDGET="256",
    )
    try:
        yield app
    finally:
        app.stop()


def expect_thumbnails(message: Locator, captions: list[str]) -> None:
    """The message shows these image captions, each over an image the browser decoded."""
    expect(message.get_by_test_id("stImageCaption")).to_have_count(len(captions), timeout=WAIT_MS)
    for index, caption in enumerate(captions):
        expect(message.get_by_test_id("stImageCaption").nth(index)).to_contain_text(caption)
        image = message.get_by_test_id("stImage").nth(index).locator("img")
        expect(image).to_have_js_property("complete", True, timeout=WAIT_MS)
        assert image.evaluate("img => img.naturalWidth") > 0, f"thumbnail {caption!r} did not load"


def test_a_pdf_is_uploaded_its_pages_shown_answered_and_other_pages_picked(
    page: Page, pdf_app: StreamlitApp, tmp_path: Path
) -> None:
    report = tmp_path / "report.pdf"
    report.write_bytes(pdf_bytes(4))
    open_chat(page, pdf_app.url)

    ask(page, "What is in this report?", files=[report])
    expect_answered(page, count=2, stats=1)
    first = messages(page).nth(0)
    expect_thumbnails(first, ["report.pdf · page 1 · ", "report.pdf · page 2 · "])
    expect(first).to_contain_text("report.pdf: pages 1–2 of 4 sent, one image each.")
    expect(first).to_contain_text("pages 3–4 were not sent")
    expect(page.get_by_text("report.pdf (4 pages) is attached")).to_be_visible()

    pages = page.get_by_role("textbox", name="Pages")
    pages.fill("3-4")
    pages.press("Enter")
    idle(page)
    ask(page, "And the last two pages?")
    expect_answered(page, count=4, stats=1)
    expect_thumbnails(messages(page).nth(2), ["report.pdf · page 3 · ", "report.pdf · page 4 · "])
    expect(messages(page).nth(2)).to_contain_text("report.pdf: pages 3–4 of 4 sent, one image each.")
    expect(pages).to_have_value("")
