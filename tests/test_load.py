"""Load: 64 concurrent multimodal conversations through the page's client code, and a page that stays
responsive for a second user while another one's answer streams. Against the real tiny vLLM server.

The 64-conversation run is benchmarks/load.py with shorter answers (the benchmark's figures are in
benchmarks/results/load-64.json); see that module for how each conversation is made identifiable.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from benchmarks.load import answer_of, measure_alone, run_concurrently, summary, target_for, workloads
from frontend.conversation import Answer, AnswerStats, AnswerStatus, Conversation, Message
from frontend.images import prepare_image
from frontend.store import ConversationStore
from tests.conftest import TinyServer
from tests.helpers.faults import throttled_proxy
from tests.helpers.images import image_bytes
from tests.helpers.streamlit_app import StreamlitApp, launch_chromium, wait_for_app_idle

pytestmark = pytest.mark.vllm

CONVERSATIONS = 64
TEST_OUTPUT_TOKENS = 8
WAIT_MS = 90_000
STATS = '[class*="st-key-answer-stats"]'
# The long answer comes through a proxy that passes TRICKLE_BYTES every TRICKLE_STEP_S (about 10 tokens/s):
# whatever the random model says, it streams for seconds, while the second user opens the page.
TRICKLE_BYTES = 128
TRICKLE_STEP_S = 0.05
LONG_ANSWER_TOKENS = 200
MIN_STREAMING_S = 8.0
ATTEMPTS = 3


def test_64_concurrent_conversations_each_get_their_own_answer(tiny_server: TinyServer, tmp_path: Path):
    target = target_for(
        tiny_server.base_url, tiny_server.api_key, tiny_server.served_name, tiny_server.image_limit
    )
    items = workloads(CONVERSATIONS)
    alone = measure_alone(items, target=target, output_tokens=TEST_OUTPUT_TOKENS)
    counts = [answer_of(alone[w.index]).stats.prompt_tokens for w in items]
    assert len(set(counts)) == CONVERSATIONS, f"requests are not identifiable by prompt_tokens: {counts}"

    store = ConversationStore(tmp_path / "chats.sqlite3")
    run = run_concurrently(items, target=target, output_tokens=TEST_OUTPUT_TOKENS, store=store)
    result = summary(items, alone, run, output_tokens=TEST_OUTPUT_TOKENS)

    assert result["problems"] == []
    assert result["completed_with_usage"] == CONVERSATIONS
    assert result["own_prompt_tokens"] == CONVERSATIONS
    # All 64 are released at once, but on 2 shared cores their threads take turns (one GIL) getting their
    # requests out, and the first 8-token answer can end before the last request starts: 63 of 64 overlapped
    # while developing; at least three quarters must.
    assert run.max_in_flight() >= CONVERSATIONS * 3 // 4, run.max_in_flight()
    assert {s.id for s in store.list(limit=CONVERSATIONS + 1)} == {c.id for c in run.conversations.values()}
    print(json.dumps(result["concurrent"], indent=1))


# --------------------------------------------------------------------------- a second user while one streams


def stored_chat(data_dir: Path) -> Conversation:
    """A finished conversation with an image, as the second user's history."""
    picture = prepare_image(image_bytes(400, 300), "holiday.png", token_budget=256)
    conversation = Conversation(
        title="Earlier chat",
        messages=[
            Message(role="user", text="What is on this holiday photo?", images=[picture]),
            Message(
                role="assistant",
                answers=[
                    Answer(
                        endpoint="Tiny A",
                        content="A beach with two umbrellas.",
                        status=AnswerStatus.DONE,
                        stats=AnswerStats(model="tiny-qwen3-vl", prompt_tokens=90, completion_tokens=7),
                    )
                ],
            ),
        ],
    )
    ConversationStore(data_dir / "chats.sqlite3").save(conversation)
    return conversation


@pytest.fixture
def streaming_page_app(
    tiny_server: TinyServer, tmp_path: Path
) -> Iterator[tuple[StreamlitApp, Conversation]]:
    """`streamlit run` of the page, its one endpoint behind the trickling proxy, and a stored conversation."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    chat = stored_chat(data_dir)
    port = urlsplit(tiny_server.root_url).port
    with throttled_proxy(port, step_bytes=TRICKLE_BYTES, step_s=TRICKLE_STEP_S) as proxy_port:
        endpoint: dict[str, Any] = {
            "name": "Tiny A",
            "base_url": f"http://127.0.0.1:{proxy_port}/v1",
            "api_key": tiny_server.api_key,
            "image_limit": tiny_server.image_limit,
        }
        env = {
            "FRONTEND_ENDPOINTS": json.dumps([endpoint]),
            "FRONTEND_DATA_DIR": str(data_dir),
            "FRONTEND_MAX_TOKENS": str(LONG_ANSWER_TOKENS),
        }
        app = StreamlitApp(env=env, workdir=tmp_path / "streamlit").start()
        try:
            yield app, chat
        finally:
            app.stop()


def _last_answer_finished(page: Page) -> bool:
    """The last chat message is an answer drawn after its stream ended (only then it has a stats key)."""
    return bool(
        page.evaluate(
            """(stats) => {
                const messages = document.querySelectorAll('[data-testid="stChatMessage"]');
                const last = messages[messages.length - 1];
                return !!last && !!last.querySelector(stats);
            }""",
            STATS,
        )
    )


def _open_history(page: Page, url: str, chat: Conversation) -> float:
    """Seconds until the page at `url` shows the sidebar (model picker with the model id) and the history."""
    started = time.monotonic()
    page.goto(url)
    sidebar = page.get_by_test_id("stSidebar")
    expect(sidebar.get_by_test_id("stRadio")).to_contain_text("tiny-qwen3-vl", timeout=WAIT_MS)
    expect(sidebar).to_contain_text(chat.title, timeout=WAIT_MS)
    messages = page.get_by_test_id("stChatMessage")
    expect(messages).to_have_count(2, timeout=WAIT_MS)
    expect(messages.first).to_contain_text(chat.messages[0].text, timeout=WAIT_MS)
    expect(messages.first.get_by_test_id("stImage").locator("img")).to_be_visible(timeout=WAIT_MS)
    expect(messages.last).to_contain_text("A beach with two umbrellas.", timeout=WAIT_MS)
    return time.monotonic() - started


def test_the_page_stays_responsive_for_a_second_user_while_another_streams(
    streaming_page_app: tuple[StreamlitApp, Conversation],
) -> None:
    app, chat = streaming_page_app
    history_url = f"{app.url}/?chat={chat.id}"
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            first, second = (browser.new_context().new_page() for _ in range(2))
            for page in (first, second):
                page.set_default_timeout(WAIT_MS)
            idle_load_s = _open_history(second, history_url, chat)  # the same load with nobody streaming

            first.goto(app.url)
            wait_for_app_idle(first, WAIT_MS)
            for attempt in range(1, ATTEMPTS + 1):
                first.get_by_test_id("stChatInputTextArea").fill("Tell me a long story.")
                first.get_by_test_id("stChatInputSubmitButton").click()
                asked = time.monotonic()
                messages = first.get_by_test_id("stChatMessage")
                expect(messages).to_have_count(2 * attempt, timeout=WAIT_MS)
                # Streaming: the answer has text but no stats yet.
                expect(messages.last.get_by_test_id("stMarkdownContainer").first).not_to_be_empty(
                    timeout=WAIT_MS
                )
                busy_load_s = _open_history(second, history_url, chat)
                still_streaming = not _last_answer_finished(first)
                expect(messages.last.locator(STATS)).to_have_count(1, timeout=WAIT_MS)
                streaming_s = time.monotonic() - asked
                if still_streaming and streaming_s >= MIN_STREAMING_S:
                    break
                wait_for_app_idle(first, WAIT_MS)  # the random model ended early: ask again
            else:
                pytest.fail(f"no answer streamed for {MIN_STREAMING_S} s in {ATTEMPTS} attempts")
        finally:
            browser.close()
    print(
        f"second user's page: {idle_load_s:.2f} s idle, {busy_load_s:.2f} s while the first streamed "
        f"for {streaming_s:.1f} s"
    )
    assert still_streaming, "the second page loaded only after the first answer had finished"
    assert busy_load_s < streaming_s / 2, (busy_load_s, streaming_s)
