"""The chat page in a real browser: headless Chromium (Playwright) against `streamlit run frontend/app.py`, with two
real tiny vLLM servers as the endpoints "Tiny A" and "Tiny B".

Covers what AppTest cannot: the file chooser of the chat input, streaming into the page, the stop button while an
answer streams, the URL of a conversation surviving a reload, and the rendered page (a screenshot for humans in
test-artifacts/chat-page.png).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from harness.serve_up import REPO_ROOT
from tests.helpers.faults import holding_proxy
from tests.helpers.streamlit_app import StreamlitApp, launch_chromium, wait_for_app_idle

pytestmark = pytest.mark.vllm

# The CPU is shared by two vLLMs, Streamlit and Chromium: be generous, but wait on conditions, never sleep.
WAIT_MS = 60_000
VIEWPORT = {"width": 1400, "height": 1000}
ARTIFACTS = REPO_ROOT / "test-artifacts"
SCREENSHOT = ARTIFACTS / "chat-page.png"
SHORT_ANSWER_TOKENS = 24
LONG_ANSWER_TOKENS = 1500
# Response headers (~180 bytes) and the first SSE chunks of an answer (~200-250 bytes each): about 10 tokens.
HOLD_AFTER_BYTES = 2500
STOP_ATTEMPTS = 3
STATS = '[class*="st-key-answer-stats"]'
# "tiny-qwen3-vl" is a prefix of "tiny-qwen3-vl-b": model A's id must not be followed by "-b".
MODEL_A_ID = re.compile(r"tiny-qwen3-vl(?!-b)")
MODEL_B_ID = "tiny-qwen3-vl-b"
STATS_PARTS = ("first token", "tok/s", "prompt", "completion")
# The page's Stop button, drawn above the answers while they stream (a keyed st.button).
STOP_BUTTON = ".st-key-stop-answer button"
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

# Scrolls the first image of the chat to the top of the view; true once it is loaded and wholly in view.
SCROLL_TO_FIRST_IMAGE_JS = """() => {
    const image = document.querySelector('[data-testid="stChatMessage"] [data-testid="stImage"] img');
    if (!image || !image.complete || !image.naturalHeight) return false;
    image.closest('[data-testid="stImage"]').scrollIntoView({block: "start"});
    const box = image.getBoundingClientRect();
    return box.top >= 0 && box.bottom <= window.innerHeight;
}"""


def _start_page(run_dir: Path, endpoints: dict[str, tuple[str, Any]]) -> StreamlitApp:
    """`streamlit run` of the page with `endpoints` (name -> (base_url, TinyServer)) and a fresh data dir."""
    settings = [
        {"name": name, "base_url": base_url, "api_key": server.api_key, "image_limit": server.image_limit}
        for name, (base_url, server) in endpoints.items()
    ]
    (run_dir / "data").mkdir(parents=True)
    env = {
        "FRONTEND_ENDPOINTS": json.dumps(settings),
        "FRONTEND_DATA_DIR": str(run_dir / "data"),
        "FRONTEND_MAX_TOKENS": str(SHORT_ANSWER_TOKENS),
    }
    return StreamlitApp(env=env, workdir=run_dir).start()


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


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (a new Streamlit session); its last state is saved as a screenshot, and the
    log of the test's page is printed (pytest shows both only when the test failed)."""
    context = browser.new_context(viewport=VIEWPORT)
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


@pytest.fixture
def picture(tmp_path: Path) -> Path:
    """A small generated PNG (drawn in memory, written for the file chooser)."""
    image = Image.new("RGB", (320, 240), "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle((40, 40, 160, 200), fill="red")
    draw.ellipse((180, 60, 300, 180), fill="blue")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    path = tmp_path / "shapes.png"
    path.write_bytes(buffer.getvalue())
    return path


def _messages(page: Page) -> Locator:
    return page.get_by_test_id("stChatMessage")


def _idle(page: Page) -> None:
    """Wait for the script run to end; fail at once with the traceback if the page raised."""
    wait_for_app_idle(page, WAIT_MS)
    errors = page.get_by_test_id("stException")
    if errors.count():
        pytest.fail(f"the page raised:\n{errors.first.inner_text()}")


def _open(page: Page, url: str) -> None:
    page.goto(url)
    _idle(page)
    expect(page.get_by_test_id("stChatInput")).to_be_visible(timeout=WAIT_MS)


def _ask(page: Page, question: str, *, files: list[Path] | None = None) -> None:
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


def _expect_answered(page: Page, *, messages: int, stats: int) -> Locator:
    """Wait for `messages` chat messages of which the last (the assistant's) holds `stats` finished answers."""
    expect(_messages(page)).to_have_count(messages, timeout=WAIT_MS)
    answer = _messages(page).last
    expect(answer.locator(STATS)).to_have_count(stats, timeout=WAIT_MS)
    _idle(page)
    for part in STATS_PARTS:
        for index in range(stats):
            expect(answer.locator(STATS).nth(index)).to_contain_text(part, timeout=WAIT_MS)
    return answer


def _sidebar(page: Page) -> Locator:
    return page.get_by_test_id("stSidebar")


def test_chat_with_image_model_switch_compare_and_reload(page: Page, chat_app: StreamlitApp, picture: Path):
    _open(page, chat_app.url)
    model_radio = _sidebar(page).get_by_test_id("stRadio")
    expect(model_radio.get_by_role("radio", name="Tiny B")).to_be_visible(timeout=WAIT_MS)
    expect(model_radio.get_by_role("radio", name="Tiny A")).to_be_checked(timeout=WAIT_MS)

    # 1. An image and a question to the default model, Tiny A.
    question = "What shapes are in this picture?"
    _ask(page, question, files=[picture])
    answer = _expect_answered(page, messages=2, stats=1)
    user = _messages(page).first
    expect(user).to_contain_text(question)
    expect(user.get_by_test_id("stImage")).to_have_count(1)
    expect(user.get_by_test_id("stImage")).to_contain_text("tokens")
    expect(user.get_by_test_id("stImage").locator("img")).to_be_visible()
    expect(answer.locator(STATS)).to_contain_text(MODEL_A_ID)
    assert re.search(r"[?&]chat=[^&]+", page.url), f"no ?chat=<id> in the URL after a message: {page.url}"

    # 2. Switch the model to Tiny B: the next answer comes from it, the history stays.
    model_radio.get_by_text("Tiny B", exact=True).click()
    expect(model_radio.get_by_role("radio", name="Tiny B")).to_be_checked(timeout=WAIT_MS)
    _idle(page)
    _ask(page, "And what colours do they have?")
    answer = _expect_answered(page, messages=4, stats=1)
    expect(answer.locator(STATS)).to_contain_text(MODEL_B_ID)
    expect(_messages(page).first.get_by_test_id("stImage")).to_have_count(1)
    expect(_messages(page).nth(1).locator(STATS)).to_contain_text(MODEL_A_ID)

    # 3. Compare side by side: one assistant message with an answer from each endpoint.
    _sidebar(page).get_by_text("Compare side by side", exact=True).click()
    _idle(page)
    _ask(page, "Describe the picture in one sentence.")
    answer = _expect_answered(page, messages=6, stats=2)
    expect(answer).to_contain_text("Tiny A")
    expect(answer).to_contain_text("Tiny B")
    stats_lines = answer.locator(STATS).all_inner_texts()
    assert sum(MODEL_B_ID in line for line in stats_lines) == 1, stats_lines
    assert sum(bool(MODEL_A_ID.search(line)) for line in stats_lines) == 1, stats_lines

    # 4. A reload of the same URL shows the same conversation, image included.
    url = page.url
    page.reload()
    _idle(page)
    assert page.url == url
    expect(_messages(page)).to_have_count(6, timeout=WAIT_MS)
    expect(_messages(page).first).to_contain_text(question)
    expect(_messages(page).first.get_by_test_id("stImage").locator("img")).to_be_visible(timeout=WAIT_MS)
    expect(page.locator(STATS)).to_have_count(4, timeout=WAIT_MS)

    # 6. The page as a user sees it, for humans reviewing the change: from the image down to the compared
    # answers and their stats. Streamlit scrolls inside the page (so the full page is the viewport) and keeps a
    # chat scrolled to its end while it grows: scroll once the image has loaded, until it stays in view.
    page.wait_for_function(SCROLL_TO_FIRST_IMAGE_JS, timeout=WAIT_MS)
    ARTIFACTS.mkdir(exist_ok=True)
    SCREENSHOT.unlink(missing_ok=True)
    page.screenshot(path=SCREENSHOT, full_page=True)
    with Image.open(SCREENSHOT) as shot:
        assert (shot.format, shot.size) == ("PNG", (VIEWPORT["width"], VIEWPORT["height"]))


def test_stop_keeps_the_partial_answer(page: Page, held_answer_app: StreamlitApp):
    _open(page, held_answer_app.url)
    sidebar = _sidebar(page)
    sidebar.get_by_test_id("stExpander").locator("summary").filter(has_text="Settings").click()
    max_tokens = sidebar.get_by_role("spinbutton", name="Max tokens")
    max_tokens.fill(str(LONG_ANSWER_TOKENS))
    max_tokens.press("Enter")
    _idle(page)
    expect(max_tokens).to_have_value(str(LONG_ANSWER_TOKENS), timeout=WAIT_MS)

    # 5. A long answer, stopped while it streams. The proxy holds it after its first tokens; an answer that the
    # random model ends within those tokens finishes normally, and the question is asked again.
    for attempt in range(1, STOP_ATTEMPTS + 1):
        _ask(page, "Tell me a very long story about these shapes.")
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
        _idle(page)
    else:
        pytest.fail(f"all {STOP_ATTEMPTS} answers ended within their first tokens: nothing left to stop")
    answer = _messages(page).last
    streamed = page.evaluate(ANSWER_TEXT_JS)
    page.get_by_role("button", name="Stop").click()

    expect(answer).to_contain_text("Stopped", timeout=WAIT_MS)
    expect(page.get_by_test_id("stChatInputSubmitButton")).to_be_visible(timeout=WAIT_MS)
    _idle(page)
    kept = page.evaluate(ANSWER_TEXT_JS)
    assert kept.startswith(streamed), (
        f"the stopped answer lost its text: streamed {streamed!r}, kept {kept!r}"
    )
