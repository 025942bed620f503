"""Turns the user takes back: delete a message or an answer, edit and resend the last message, import a chat
exported as JSON. Streamlit's AppTest against the real tiny vLLM."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from frontend.conversation import Answer, AnswerStatus, Conversation, GenerationSettings, Message
from frontend.export import export_json
from frontend.images import prepare_image
from tests.conftest import TinyServer
from tests.helpers.images import image_bytes
from tests.helpers.page import saved, send, start_page

pytestmark = pytest.mark.vllm

TOO_LONG = "word " * 5000  # more than the tiny model's 2048-token context

Page = Callable[..., AppTest]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def open_page(monkeypatch: pytest.MonkeyPatch, data_dir: Path, tiny_server: TinyServer) -> Page:
    endpoint = {
        "name": "Tiny A",
        "base_url": tiny_server.base_url,
        "api_key": tiny_server.api_key,
        "image_limit": tiny_server.image_limit,
    }

    def start(**variables: Any) -> AppTest:
        return start_page(monkeypatch, data_dir, [endpoint], **variables)

    return start


def click(page: AppTest, key: str) -> AppTest:
    page.button(key=key).click().run()
    assert not page.exception, page.exception
    return page


def test_a_message_too_long_for_the_context_can_be_deleted_and_the_chat_goes_on(
    open_page: Page, data_dir: Path
) -> None:
    page = send(open_page(), "A fine question")
    send(page, TOO_LONG)
    assert "no longer fits" in page.chat_message[3].error[0].value
    stuck = saved(data_dir, page).messages[2]

    click(page, f"delete-turn-{stuck.id}")  # the question goes, with its failed answer
    conversation = saved(data_dir, page)
    assert [message.role for message in conversation.messages] == ["user", "assistant"]
    assert conversation.messages[0].text == "A fine question"
    assert len(page.chat_message) == 2

    send(page, "And another one")
    answer = saved(data_dir, page).messages[-1].answers[0]
    assert answer.status is AnswerStatus.DONE, answer.error


def test_an_answer_can_be_deleted_and_asked_for_again(open_page: Page, data_dir: Path) -> None:
    page = send(open_page(), "Tell me something")
    answer = saved(data_dir, page).messages[1]
    click(page, f"delete-turn-{answer.id}")
    assert [message.role for message in saved(data_dir, page).messages] == ["user"]
    assert "regenerate-button" not in _keys(page)

    click(page, "answer-button")
    again = saved(data_dir, page).messages
    assert [message.role for message in again] == ["user", "assistant"]
    assert again[1].id != answer.id and again[1].answers[0].status is AnswerStatus.DONE


def _keys(page: AppTest) -> set[str]:
    return {button.key for button in page.button}


def test_edit_and_resend_the_last_message(open_page: Page, data_dir: Path) -> None:
    picture = ("shapes.png", image_bytes(200, 160), "image/png")
    page = send(open_page(), "Describe a cat")
    send(page, TOO_LONG, picture)
    last = saved(data_dir, page).messages[2]
    assert f"edit-turn-{saved(data_dir, page).messages[0].id}" not in _keys(page)  # only the last message

    click(page, f"edit-turn-{last.id}")
    [text] = [area for area in page.text_area if area.label == "Edit your message"]
    assert text.value == TOO_LONG.strip()
    text.set_value("What colour are the shapes?")
    [images] = page.multiselect
    assert images.value == [0]  # every image is kept unless unticked
    [resend] = [button for button in page.button if button.label == "Send again"]
    resend.click().run()
    assert not page.exception, page.exception

    conversation = saved(data_dir, page)
    assert len(conversation.messages) == 4
    edited, answer = conversation.messages[2:]
    assert (edited.id, edited.text) == (last.id, "What colour are the shapes?")
    assert [image.name for image in edited.images] == ["shapes.png"]
    assert answer.answers[0].status is AnswerStatus.DONE, answer.answers[0].error
    assert page.chat_message[2].markdown[0].value == "What colour are the shapes?"


def test_editing_to_an_empty_message_is_refused_and_keeps_the_turn(open_page: Page, data_dir: Path) -> None:
    page = send(open_page(), "Keep me")
    before = saved(data_dir, page)
    click(page, f"edit-turn-{before.messages[0].id}")
    [text] = [area for area in page.text_area if area.label == "Edit your message"]
    text.set_value("   ")
    [resend] = [button for button in page.button if button.label == "Send again"]
    resend.click().run()
    assert "empty message cannot be sent" in page.error[0].value
    assert saved(data_dir, page) == before


def test_a_chat_exported_as_json_imports_with_its_images(open_page: Page, data_dir: Path) -> None:
    picture = prepare_image(image_bytes(300, 200), "street.png", token_budget=256)
    exported = Conversation(
        title="Exported elsewhere",
        settings=GenerationSettings(max_tokens=12),  # an import keeps its settings: a short answer
        messages=[
            Message(role="user", text="Where is the car?", images=[picture]),
            Message(
                role="assistant",
                answers=[Answer(endpoint="Tiny A", content="On the left.", status=AnswerStatus.DONE)],
            ),
        ],
    )
    page = open_page()
    page.file_uploader[0].set_value(("chat.json", export_json(exported), "application/json")).run()
    assert not page.exception, page.exception

    imported = saved(data_dir, page)
    assert imported.id != exported.id  # a new chat: importing twice, or next to the original, keeps both
    assert imported.model_dump(exclude={"id", "updated_at"}) == exported.model_dump(
        exclude={"id", "updated_at"}
    )
    assert page.chat_message[0].markdown[0].value == "Where is the car?"
    assert len(page.chat_message[0].get("image")) == 1
    send(page, "And the bike?")  # it goes on like any chat
    assert saved(data_dir, page).messages[-1].answers[0].status is AnswerStatus.DONE


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "The file is empty"),
        (b"\xff\xfe\x00garbage", "not text"),
        (b'{"title": "x", ', "not valid JSON (line 1"),
        (json.dumps({"messages": [{"role": "robot"}]}).encode(), "not a chat export (messages.0.role"),
        ("broken-image", "broken image: street.png is truncated or corrupt"),
    ],
    ids=["empty", "binary", "truncated-json", "not-a-chat", "broken-image"],
)
def test_a_file_that_is_not_a_chat_export_is_refused_and_changes_nothing(
    open_page: Page, data_dir: Path, content: bytes | str, message: str
) -> None:
    if content == "broken-image":
        picture = prepare_image(image_bytes(300, 200), "street.png", token_budget=256)
        picture.data_base64 = picture.data_base64[: len(picture.data_base64) // 2]
        content = export_json(Conversation(messages=[Message(role="user", text="x", images=[picture])]))
    page = send(open_page(), "My chat")
    before = saved(data_dir, page)
    page.file_uploader[0].set_value(("chat.json", content, "application/json")).run()
    assert not page.exception, page.exception
    assert message in page.sidebar.error[0].value
    assert saved(data_dir, page) == before  # the open chat is still open and unchanged
    assert len(page.chat_message) == 2
