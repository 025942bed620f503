"""The chat page in a real browser: headless Chromium (Playwright) against `streamlit run frontend/app.py`, with two
real tiny vLLM servers as the endpoints "Tiny A" and "Tiny B".

Covers what AppTest cannot: the file chooser of the chat input, streaming into the page, the stop button while an
answer streams, the URL of a conversation surviving a reload, and the rendered page (the delete button's glyph).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from tests.helpers.browser import (
    STATS,
    STOP_BUTTON,
    WAIT_MS,
    ask,
    expect_answered,
    expect_delete_glyph,
    idle,
    messages,
    open_chat,
    shapes_png,
    sidebar,
    start_chat_page,
)
from tests.helpers.faults import holding_proxy
from tests.helpers.streamlit_app import StreamlitApp

pytestmark = pytest.mark.vllm

SHORT_ANSWER_TOKENS = 24
LONG_ANSWER_TOKENS = 1500
# Response headers (~180 bytes) and the first SSE chunks of an answer (~200-250 bytes each): about 10 tokens.
HOLD_AFTER_BYTES = 2500
STOP_ATTEMPTS = 3
# "tiny-qwen3-vl" is a prefix of "tiny-qwen3-vl-b": model A's id must not be followed by "-b".
MODEL_A_ID = re.compile(r"tiny-qwen3-vl(?!-b)")
MODEL_B_ID = "tiny-qwen3-vl-b"
# The answer text of the last chat message: its Markdown, without captions (placeholder, "Stopped", stats).
ANSWER_TEXT_JS = """() => {
    const messages = document.querySelectorAll('[data-testid="stChatMessage"]');
    const last = messages[messages.length - 1];
    if (!last) return "";
    const parts = last.querySelectorAll('[data-testid="stMarkdownContainer"]');
    return Array.from(parts).map((part) => part.innerText).join(" ").trim();
}"""
# "streaming" once the expected number of messages is there, the stop button shows and the answer has text;
# "finished" if that answer already ended (its stats are drawn and the script is idle); else keep waiting.
STREAMING_OR_FINISHED_JS = f"""([count, stopButton]) => {{
    const messages = document.querySelectorAll('[data-testid="stChatMessage"]');
    if (messages.length !== count) return false;
    const stop = document.querySelector(stopButton);
    if (stop && ({ANSWER_TEXT_JS})().length > 0) return "streaming";
    const idle = document.querySelector('[data-test-script-state="notRunning"]');
    if (!stop && idle && messages[count - 1].querySelector('{STATS}')) return "finished";
    return false;
}}"""


def _start_page(run_dir: Path, endpoints: dict[str, tuple[str, Any]]) -> StreamlitApp:
    """The page with `endpoints` (name -> (base_url, TinyServer)) and a fresh data dir."""
    settings = [
        {"name": name, "base_url": base_url, "api_key": server.api_key, "image_limit": server.image_limit}
        for name, (base_url, server) in endpoints.items()
    ]
    return start_chat_page(run_dir, settings, FRONTEND_MAX_TOKENS=str(SHORT_ANSWER_TOKENS))


@pytest.fixture(scope="module")
def chat_app(
    tiny_server: Any, second_tiny_server: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StreamlitApp]:
    """The page with Tiny A and Tiny B (TinyServer, from tests/conftest.py)."""
    endpoints = {
        "Tiny A": (tiny_server.base_url, tiny_server),
        "Tiny B": (second_tiny_server.base_url, second_tiny_server),
    }
    app = _start_page(tmp_path_factory.mktemp("chat-page"), endpoints)
    try:
        yield app
    finally:
        app.stop()


@pytest.fixture
def held_answer_app(tiny_server: Any, second_tiny_server: Any, tmp_path: Path) -> Iterator[StreamlitApp]:
    """The page with Tiny A behind a proxy that holds every answer after its first few tokens: an answer that
    is still streaming when the test clicks stop, whatever the random model says and however fast it says it.
    """
    with holding_proxy(urlsplit(tiny_server.root_url).port, hold_after_bytes=HOLD_AFTER_BYTES) as port:
        endpoints = {
            "Tiny A": (f"http://127.0.0.1:{port}/v1", tiny_server),
            "Tiny B": (second_tiny_server.base_url, second_tiny_server),
        }
        app = _start_page(tmp_path / "held-answer-page", endpoints)
        try:
            yield app
        finally:
            app.stop()


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    return shapes_png(tmp_path / "shapes.png")


def test_chat_with_image_model_switch_compare_and_reload(page: Page, chat_app: StreamlitApp, picture: Path):
    open_chat(page, chat_app.url)
    model_radio = sidebar(page).get_by_test_id("stRadio")
    expect(model_radio.get_by_role("radio", name="Tiny B")).to_be_visible(timeout=WAIT_MS)
    expect(model_radio.get_by_role("radio", name="Tiny A")).to_be_checked(timeout=WAIT_MS)

    # 1. An image and a question to the default model, Tiny A.
    question = "What shapes are in this picture?"
    ask(page, question, files=[picture])
    answer = expect_answered(page, count=2, stats=1)
    user = messages(page).first
    expect(user).to_contain_text(question)
    expect(user.get_by_test_id("stImage")).to_have_count(1)
    expect(user.get_by_test_id("stImage")).to_contain_text("tokens")
    expect(user.get_by_test_id("stImage").locator("img")).to_be_visible()
    expect(answer.locator(STATS)).to_contain_text(MODEL_A_ID)
    assert re.search(r"[?&]chat=[^&]+", page.url), f"no ?chat=<id> in the URL after a message: {page.url}"

    # 2. Switch the model to Tiny B: the next answer comes from it, the history stays.
    model_radio.get_by_text("Tiny B", exact=True).click()
    expect(model_radio.get_by_role("radio", name="Tiny B")).to_be_checked(timeout=WAIT_MS)
    idle(page)
    ask(page, "And what colours do they have?")
    answer = expect_answered(page, count=4, stats=1)
    expect(answer.locator(STATS)).to_contain_text(MODEL_B_ID)
    expect(messages(page).first.get_by_test_id("stImage")).to_have_count(1)
    expect(messages(page).nth(1).locator(STATS)).to_contain_text(MODEL_A_ID)

    # 3. Compare side by side: one assistant message with an answer from each endpoint.
    sidebar(page).get_by_text("Compare side by side", exact=True).click()
    idle(page)
    ask(page, "Describe the picture in one sentence.")
    answer = expect_answered(page, count=6, stats=2)
    expect(answer).to_contain_text("Tiny A")
    expect(answer).to_contain_text("Tiny B")
    stats_lines = answer.locator(STATS).all_inner_texts()
    assert sum(MODEL_B_ID in line for line in stats_lines) == 1, stats_lines
    assert sum(bool(MODEL_A_ID.search(line)) for line in stats_lines) == 1, stats_lines

    # 4. A reload of the same URL shows the same conversation, image included.
    url = page.url
    page.reload()
    idle(page)
    assert page.url == url
    expect(messages(page)).to_have_count(6, timeout=WAIT_MS)
    expect(messages(page).first).to_contain_text(question)
    expect(messages(page).first.get_by_test_id("stImage").locator("img")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator(STATS)).to_have_count(4, timeout=WAIT_MS)

    # 5. The delete button beside the saved chat shows its glyph (a Material icon: Streamlit ships the font).
    expect_delete_glyph(sidebar(page))


def test_stop_keeps_the_partial_answer(page: Page, held_answer_app: StreamlitApp):
    open_chat(page, held_answer_app.url)
    panel = sidebar(page)
    panel.get_by_test_id("stExpander").locator("summary").filter(has_text="Settings").click()
    max_tokens = panel.get_by_role("spinbutton", name="Max tokens")
    max_tokens.fill(str(LONG_ANSWER_TOKENS))
    max_tokens.press("Enter")
    idle(page)
    expect(max_tokens).to_have_value(str(LONG_ANSWER_TOKENS), timeout=WAIT_MS)

    # 6. A long answer, stopped while it streams. The proxy holds it after its first tokens; an answer that the
    # random model ends within those tokens finishes normally, and the question is asked again.
    for attempt in range(1, STOP_ATTEMPTS + 1):
        ask(page, "Tell me a very long story about these shapes.")
        try:
            state = page.wait_for_function(
                STREAMING_OR_FINISHED_JS, arg=[2 * attempt, STOP_BUTTON], timeout=WAIT_MS
            ).json_value()
        except PlaywrightTimeoutError:
            buttons = page.get_by_role("button").all_inner_texts()
            pytest.fail(
                f"no answer streaming with a stop button ({STOP_BUTTON}), nor a finished answer, "
                f"within {WAIT_MS / 1000:.0f} s; the page's buttons: {buttons}; "
                f"the answer so far: {page.evaluate(ANSWER_TEXT_JS)!r}"
            )
        if state == "streaming":
            break
        idle(page)
    else:
        pytest.fail(f"all {STOP_ATTEMPTS} answers ended within their first tokens: nothing left to stop")
    answer = messages(page).last
    streamed = page.evaluate(ANSWER_TEXT_JS)
    page.get_by_role("button", name="Stop").click()

    expect(answer).to_contain_text("Stopped", timeout=WAIT_MS)
    expect(page.get_by_test_id("stChatInputSubmitButton")).to_be_visible(timeout=WAIT_MS)
    idle(page)
    kept = page.evaluate(ANSWER_TEXT_JS)
    assert kept.startswith(streamed), (
        f"the stopped answer lost its text: streamed {streamed!r}, kept {kept!r}"
    )
