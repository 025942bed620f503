"""Driving the chat page in Chromium (Playwright's sync API): open it, ask with attachments, wait for answers.

Shared by the browser tests; the page itself runs under `streamlit_app.StreamlitApp`.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, Locator, Page, expect

from harness.serve_up import REPO_ROOT
from tests.helpers.streamlit_app import StreamlitApp, wait_for_app_idle

# The CPU is shared by vLLMs, Streamlit and Chromium: be generous, but wait on conditions, never sleep.
WAIT_MS = 60_000
VIEWPORT = {"width": 1400, "height": 1000}
ARTIFACTS = REPO_ROOT / "test-artifacts"
STATS = '[class*="st-key-answer-stats"]'
STATS_PARTS = ("first token", "tok/s", "prompt", "completion")
# The page's Stop button, drawn above the answers while they stream (a keyed st.button).
STOP_BUTTON = ".st-key-stop-answer button"


def start_chat_page(run_dir: Path, endpoints: list[dict[str, Any]], **variables: str) -> StreamlitApp:
    """`streamlit run` of the page with `endpoints` (FRONTEND_ENDPOINTS entries) and a fresh data dir."""
    (run_dir / "data").mkdir(parents=True)
    env = {
        "FRONTEND_ENDPOINTS": json.dumps(endpoints),
        "FRONTEND_DATA_DIR": str(run_dir / "data"),
        **variables,
    }
    return StreamlitApp(env=env, workdir=run_dir).start()


@contextmanager
def browser_page(
    browser: Browser, request: pytest.FixtureRequest, *, viewport: dict[str, int] = VIEWPORT
) -> Iterator[Page]:
    """A fresh browser context (a new Streamlit session); its last state is saved as a screenshot, and the
    logs of the test's pages are printed (pytest shows both only when the test failed)."""
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(WAIT_MS)
    try:
        yield page
    finally:
        ARTIFACTS.mkdir(exist_ok=True)
        shot = ARTIFACTS / f"browser-{request.node.name}.png"
        page.screenshot(path=shot, full_page=True)
        context.close()
        print(f"last page state: {shot.relative_to(REPO_ROOT)}")
        for app in request.node.funcargs.values():
            if isinstance(app, StreamlitApp):
                print(f"streamlit log ({app.log_path}):\n{app.output()[-4000:]}")


def shapes_png(path: Path) -> Path:
    """A small generated PNG: a red square-ish rectangle and a blue circle on white."""
    image = Image.new("RGB", (320, 240), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 40, 160, 200), fill="red")
    draw.ellipse((180, 60, 300, 180), fill="blue")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())
    return path


def messages(page: Page) -> Locator:
    return page.get_by_test_id("stChatMessage")


def sidebar(page: Page) -> Locator:
    return page.get_by_test_id("stSidebar")


def idle(page: Page) -> None:
    """Wait for the script run to end; fail at once with the traceback if the page raised."""
    wait_for_app_idle(page, WAIT_MS)
    errors = page.get_by_test_id("stException")
    if errors.count():
        pytest.fail(f"the page raised:\n{errors.first.inner_text()}")


def open_chat(page: Page, url: str) -> None:
    page.goto(url)
    idle(page)
    expect(page.get_by_test_id("stChatInput")).to_be_visible(timeout=WAIT_MS)


def ask(page: Page, question: str, *, files: list[Path] | None = None) -> None:
    """Attach `files` through the chat input's file chooser, type `question` and send it."""
    if files:
        with page.expect_file_chooser(timeout=WAIT_MS) as chooser:
            page.get_by_test_id("stChatInputFileUploadButton").click()
        chooser.value.set_files(files)
        for file in files:
            expect(page.get_by_test_id("stChatInput")).to_contain_text(file.name, timeout=WAIT_MS)
    page.get_by_test_id("stChatInputTextArea").fill(question)
    submit = page.get_by_test_id("stChatInputSubmitButton")
    expect(submit).to_be_enabled(timeout=WAIT_MS)
    submit.click()


def expect_answered(page: Page, *, count: int, stats: int) -> Locator:
    """Wait for `count` chat messages of which the last (the assistant's) holds `stats` finished answers."""
    expect(messages(page)).to_have_count(count, timeout=WAIT_MS)
    answer = messages(page).last
    expect(answer.locator(STATS)).to_have_count(stats, timeout=WAIT_MS)
    idle(page)
    for part in STATS_PARTS:
        for index in range(stats):
            expect(answer.locator(STATS).nth(index)).to_contain_text(part, timeout=WAIT_MS)
    return answer


# The glyph of each delete button in the chat list: its box, and whether any pixel in it differs from the
# button's background (an icon clipped to nothing, or a font that has no glyph, leaves none).
DELETE_ICONS = '[class*="st-key-delete-"] [data-testid="stIconMaterial"]:visible'


def expect_delete_glyph(where: Locator) -> None:
    """Every chat's delete button shows a glyph: its icon has a size, is drawn in the icon font (not spelled
    out as the word "delete") and colours some pixels."""
    icons = where.locator(DELETE_ICONS)
    expect(icons.first).to_be_visible(timeout=WAIT_MS)
    for index in range(icons.count()):
        icon = icons.nth(index)
        box = icon.bounding_box()
        assert box and 8 <= box["width"] <= 40 and 8 <= box["height"] <= 40, f"delete icon {index}: {box}"
        with Image.open(io.BytesIO(icon.screenshot())) as shot:
            pixels = list(shot.convert("RGB").getdata())
        background = max(set(pixels), key=pixels.count)
        drawn = sum(
            1 for pixel in pixels if max(abs(a - b) for a, b in zip(pixel, background, strict=True)) > 40
        )
        assert drawn >= 10, f"delete icon {index} draws {drawn} pixels: the glyph is missing"
