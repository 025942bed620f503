"""The README's picture of the chat page, taken in Chromium with scripted stand-in servers for 8B and 4B (the
tiny test model writes random text): an image question answered with grounding boxes, then both models side
by side. Written to test-artifacts/chat-page.png; `scripts/readme-screenshot.sh` writes docs/chat-page.png.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from harness.serve_up import REPO_ROOT
from tests.helpers.browser import (
    ARTIFACTS,
    WAIT_MS,
    ask,
    browser_page,
    expect_answered,
    messages,
    open_chat,
    shapes_png,
    sidebar,
    start_chat_page,
)
from tests.helpers.standin_server import StandIn, standin_server
from tests.helpers.streamlit_app import StreamlitApp

SCREENSHOT = ARTIFACTS / "chat-page.png"
README_PICTURE = REPO_ROOT / "docs" / "chat-page.png"
VIEWPORT = {"width": 1400, "height": 1500}
GROUNDING_QUESTION = "Outline the red rectangle and the blue circle, answer in JSON."
COMPARE_QUESTION = "Which of the two shapes is bigger?"
# The shapes of tests.helpers.browser.shapes_png on Qwen3-VL's 0..1000 grid.
GROUNDING_ANSWER = """Two shapes on a white background: a red rectangle on the left, a blue circle on the right.

```json
[
  {"bbox_2d": [125, 167, 500, 833], "label": "red rectangle"},
  {"bbox_2d": [562, 250, 938, 750], "label": "blue circle"}
]
```"""
COMPARE_ANSWERS = {
    "qwen3-vl-8b": "The **red rectangle**: about 120 × 160 px, so $19{,}200$ px², against $\\pi \\cdot 60^2 \\approx "
    "11{,}300$ px² for the circle.",
    "qwen3-vl-4b": "The red rectangle is bigger: it is taller and wider than the blue circle.",
}
# Scrolls the first message to the top of the view; true once its image is loaded and wholly in view.
SCROLL_TO_FIRST_MESSAGE_JS = """() => {
    const message = document.querySelector('[data-testid="stChatMessage"]');
    const image = message && message.querySelector('[data-testid="stImage"] img');
    if (!image || !image.complete || !image.naturalHeight) return false;
    message.scrollIntoView({block: "start"});
    const box = image.getBoundingClientRect();
    return box.top >= 0 && box.bottom <= window.innerHeight;
}"""


def scripted(model: str) -> StandIn:
    def reply(history: list[dict[str, Any]]) -> str:
        question = history[-1]["content"][-1]["text"]
        return GROUNDING_ANSWER if question == GROUNDING_QUESTION else COMPARE_ANSWERS[model]

    return StandIn(model=model, reply=reply, token_delay_s=0.01)


@pytest.fixture(scope="module")
def standin_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamlitApp]:
    with ExitStack() as stack:
        endpoints = [
            {"name": name, "base_url": stack.enter_context(standin_server(scripted(model)))}
            for name, model in (("Qwen3-VL-8B", "qwen3-vl-8b"), ("Qwen3-VL-4B", "qwen3-vl-4b"))
        ]
        app = start_chat_page(tmp_path_factory.mktemp("screenshot-page"), endpoints)
        stack.callback(app.stop)
        yield app


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    with browser_page(browser, request, viewport=VIEWPORT) as page:
        yield page


def test_the_readme_picture_of_the_page(page: Page, standin_app: StreamlitApp, tmp_path: Path) -> None:
    open_chat(page, standin_app.url)
    ask(page, GROUNDING_QUESTION, files=[shapes_png(tmp_path / "shapes.png")])
    answer = expect_answered(page, count=2, stats=1)
    expect(answer.get_by_test_id("stImage")).to_contain_text("2 box(es)/point(s) on shapes.png")
    expect(answer).to_contain_text("qwen3-vl-8b")

    sidebar(page).get_by_text("Compare side by side", exact=True).click()
    ask(page, COMPARE_QUESTION)
    answer = expect_answered(page, count=4, stats=2)
    expect(answer).to_contain_text("qwen3-vl-4b")
    expect(messages(page).first.get_by_test_id("stImage").locator("img")).to_be_visible(timeout=WAIT_MS)

    page.wait_for_function(SCROLL_TO_FIRST_MESSAGE_JS, timeout=WAIT_MS)
    ARTIFACTS.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    page.screenshot(path=SCREENSHOT)
    with Image.open(SCREENSHOT) as shot:
        assert (shot.format, shot.size) == ("PNG", (VIEWPORT["width"], VIEWPORT["height"]))
    if os.environ.get("UPDATE_README_PICTURE") == "1":
        shutil.copyfile(SCREENSHOT, README_PICTURE)
