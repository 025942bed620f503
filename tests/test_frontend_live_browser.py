"""Answers in a real browser keep streaming whatever the user clicks meanwhile, and two tabs on one chat never lose
each other's turns nor bring back a chat the other deleted.

Headless Chromium against `streamlit run`; the endpoint is a scripted stand-in server that streams a known
answer slowly (a real vLLM with the tiny random model may end its answer after two tokens, and what it says
cannot be known in advance), so the test can click mid-answer and then compare the saved answer with the
whole text.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect

from frontend.conversation import AnswerStatus, Conversation
from frontend.store import ConversationStore
from tests.helpers.browser import (
    STOP_BUTTON,
    WAIT_MS,
    ask,
    browser_page,
    expect_answered,
    messages,
    open_chat,
    sidebar,
    start_chat_page,
)
from tests.helpers.standin_server import StandIn, standin_server
from tests.helpers.streamlit_app import StreamlitApp

LONG_QUESTION = "Tell me a long story about two shapes."
STORY = " ".join(
    f"Sentence {number}: the red rectangle and the blue circle went on walking side by side."
    for number in range(8)
)
TOKEN_DELAY_S = 0.1  # STORY is ~110 pieces: about 11 s of streaming


def reply(history: list[dict[str, Any]]) -> str:
    question = history[-1]["content"][-1]["text"]
    return STORY if question == LONG_QUESTION else f"Noted: {question}."


@pytest.fixture(scope="module")
def slow_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamlitApp]:
    with standin_server(StandIn(model="qwen3-vl-8b", reply=reply, token_delay_s=TOKEN_DELAY_S)) as base_url:
        app = start_chat_page(
            tmp_path_factory.mktemp("live-page"),
            [{"name": "Qwen3-VL-8B", "base_url": base_url}],
            FRONTEND_MAX_TOKENS="400",
        )
        try:
            yield app
        finally:
            app.stop()


@pytest.fixture
def second_page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    with browser_page(browser, request) as page:
        yield page


def stored(app: StreamlitApp, chat_id: str) -> Conversation | None:
    return ConversationStore(Path(app.env["FRONTEND_DATA_DIR"]) / "chats.sqlite3").load(chat_id)


def chat_id(page: Page) -> str:
    return page.url.split("chat=", 1)[1].split("&", 1)[0]


def expect_streaming(page: Page) -> None:
    expect(page.locator(STOP_BUTTON).first).to_be_visible(timeout=WAIT_MS)  # a rerun may leave a stale one
    expect(messages(page).last).to_contain_text("Sentence 0", timeout=WAIT_MS)


def test_clicks_while_an_answer_streams_do_not_stop_it(page: Page, slow_app: StreamlitApp) -> None:
    open_chat(page, slow_app.url)
    ask(page, LONG_QUESTION)
    expect_streaming(page)
    chat = chat_id(page)

    # Mid-answer: open the settings, export the chat, start a new chat, then come back to this one.
    sidebar(page).get_by_test_id("stExpander").locator("summary").filter(has_text="Settings").click()
    expect(sidebar(page).get_by_role("spinbutton", name="Max tokens")).to_be_visible(timeout=WAIT_MS)
    with page.expect_download(timeout=WAIT_MS) as download:
        sidebar(page).get_by_role("button", name="JSON").click()
    assert download.value.suggested_filename.endswith(".json")
    sidebar(page).get_by_role("button", name="New chat").click()
    expect(messages(page)).to_have_count(0, timeout=WAIT_MS)
    sidebar(page).locator(f".st-key-open-{chat} button").first.click()
    expect_streaming(page)  # still streaming after every click: the clicks landed mid-answer

    answer = expect_answered(page, count=2, stats=1)
    expect(answer).to_contain_text("Sentence 7", timeout=WAIT_MS)
    saved = stored(slow_app, chat).messages[1].answers[0]
    assert saved.status is AnswerStatus.DONE, saved.error
    assert saved.content == STORY  # the whole answer, not the part before the first click
    assert saved.stats.completion_tokens == len(STORY.split())


def test_two_tabs_on_one_chat_keep_every_turn_and_a_delete_sticks(
    page: Page, second_page: Page, slow_app: StreamlitApp
) -> None:
    first, second = page, second_page
    open_chat(first, slow_app.url)
    ask(first, "one from the first tab")
    expect_answered(first, count=2, stats=1)
    chat = chat_id(first)

    open_chat(second, f"{slow_app.url}/?chat={chat}")
    expect(messages(second)).to_have_count(2, timeout=WAIT_MS)
    ask(second, "one from the second tab")
    expect_answered(second, count=4, stats=1)

    ask(
        first, "another from the first tab"
    )  # this tab never reloaded: it must not save over the other's turn
    expect_answered(first, count=6, stats=1)
    questions = [message.text for message in stored(slow_app, chat).messages if message.role == "user"]
    assert questions == ["one from the first tab", "one from the second tab", "another from the first tab"]
    expect(messages(first).nth(2)).to_contain_text("one from the second tab")

    # The first tab streams a long answer; the second deletes the chat meanwhile.
    ask(first, LONG_QUESTION)
    expect_streaming(first)
    second.reload()  # it opens the chat and follows the answer too: its run lasts as long as the answer
    delete = second.locator(f".st-key-delete-{chat} button").first
    expect(delete).to_be_visible(timeout=WAIT_MS)
    delete.click()
    notice = first.get_by_test_id("stAlert").filter(has_text="was deleted, in another tab or window")
    expect(notice.first).to_be_visible(timeout=WAIT_MS)
    expect(messages(first)).to_have_count(0, timeout=WAIT_MS)  # the streaming tab moved to a new chat
    time.sleep(TOKEN_DELAY_S * len(STORY.split()) / 2)  # longer than the rest of the answer would stream
    assert stored(slow_app, chat) is None
    assert ConversationStore(Path(slow_app.env["FRONTEND_DATA_DIR"]) / "chats.sqlite3").version(chat) is None
