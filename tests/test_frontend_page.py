"""The chat page's flows with Streamlit's AppTest against real tiny vLLM servers (no browser)."""

from __future__ import annotations

import io
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from frontend.conversation import Answer, AnswerStats, AnswerStatus, Conversation, Message
from frontend.images import prepare_image
from frontend.store import ConversationStore
from harness.serve_up import free_port
from tests.conftest import TinyServer
from tests.helpers.faults import cutting_proxy, stalling_proxy
from tests.helpers.images import image_bytes
from tests.helpers.page import APP, saved, send, start_page, stats_lines

pytestmark = pytest.mark.vllm

Page = Callable[..., AppTest]


def endpoint(name: str, server: TinyServer, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "base_url": server.base_url,
        "api_key": server.api_key,
        "image_limit": server.image_limit,
        **extra,
    }


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def open_page(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Page:
    def start(*endpoints: dict[str, Any], query: dict[str, str] | None = None, **variables: str) -> AppTest:
        return start_page(monkeypatch, data_dir, endpoints, query=query, **variables)

    return start


def png(width: int = 300, height: int = 200) -> tuple[str, bytes, str]:
    return (f"picture-{width}x{height}.png", image_bytes(width, height), "image/png")


def store(data_dir: Path) -> ConversationStore:
    return ConversationStore(data_dir / "chats.sqlite3")


def test_an_image_question_is_answered_with_the_model_id_and_stats(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    page = send(open_page(endpoint("Tiny A", tiny_server)), "What is in the picture?", png())

    user, assistant = page.chat_message
    assert user.markdown[0].value == "What is in the picture?"
    images = user.get("image")
    assert len(images) == 1
    assert "tokens" in images[0].captions[0]
    [stats] = stats_lines(assistant)
    assert f"`{tiny_server.served_name}`" in stats
    for part in ("s to first token", "tok/s", "prompt +", "completion tokens"):
        assert part in stats
    assert assistant.markdown[0].value  # the streamed answer
    conversation = saved(data_dir, page)  # persisted, and the URL names it
    assert conversation.messages[0].images[0].name == "picture-300x200.png"
    assert conversation.messages[1].answers[0].status is AnswerStatus.DONE
    assert conversation.title == "What is in the picture?"
    assert len(page.get("download_button")) == 2  # JSON and Markdown export


def test_switching_models_keeps_the_history_and_the_new_model_answers(
    open_page: Page, data_dir: Path, tiny_server: TinyServer, second_tiny_server: TinyServer
) -> None:
    page = open_page(endpoint("Tiny A", tiny_server), endpoint("Tiny B", second_tiny_server))
    assert page.radio[0].label == "Model"
    assert page.radio[0].options == ["Tiny A", "Tiny B"]
    send(page, "First question")
    page.radio[0].set_value("Tiny B").run()
    send(page, "Second question")

    assert len(page.chat_message) == 4
    first_stats, second_stats = (stats_lines(message)[0] for message in page.chat_message[1::2])
    assert f"`{tiny_server.served_name}`" in first_stats
    assert f"`{second_tiny_server.served_name}`" in second_stats
    conversation = saved(data_dir, page)
    first, second = (message.answers[0] for message in conversation.messages[1::2])
    assert (first.endpoint, second.endpoint) == ("Tiny A", "Tiny B")
    assert second.stats.prompt_tokens > first.stats.prompt_tokens  # the history went to the new model
    assert conversation.endpoint == "Tiny B"


def test_compare_mode_answers_side_by_side(
    open_page: Page, data_dir: Path, tiny_server: TinyServer, second_tiny_server: TinyServer
) -> None:
    page = open_page(endpoint("Tiny A", tiny_server), endpoint("Tiny B", second_tiny_server))
    page.toggle[0].set_value(True).run()
    send(page, "Which of you is faster?", png(200, 200))

    assistant = page.chat_message[-1]
    stats = stats_lines(assistant)
    assert len(stats) == 2
    assert f"`{tiny_server.served_name}`" in stats[0]
    assert f"`{second_tiny_server.served_name}`" in stats[1]
    assert [block.value for block in assistant.markdown[:1]] == ["**Tiny A**"]
    answers = saved(data_dir, page).messages[-1].answers
    assert [(answer.endpoint, answer.status) for answer in answers] == [
        ("Tiny A", AnswerStatus.DONE),
        ("Tiny B", AnswerStatus.DONE),
    ]


def test_a_reload_reopens_the_conversation_from_the_url(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    page = send(open_page(endpoint("Tiny A", tiny_server)), "Remember me", png())
    chat_id = page.query_params["chat"]

    reloaded = open_page(endpoint("Tiny A", tiny_server), query={"chat": chat_id})
    assert [message.name for message in reloaded.chat_message] == ["user", "assistant"]
    assert reloaded.chat_message[0].markdown[0].value == "Remember me"
    assert len(reloaded.chat_message[0].get("image")) == 1
    assert stats_lines(reloaded.chat_message[1]) == stats_lines(page.chat_message[1])


def test_saved_chats_can_be_opened_deleted_and_started_anew(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    page = send(open_page(endpoint("Tiny A", tiny_server)), "Chat one")
    first_id = page.query_params["chat"]
    page.button(key="new-chat").click().run()
    assert len(page.chat_message) == 0
    send(page, "Chat two")
    assert {summary.title for summary in store(data_dir).list()} == {"Chat one", "Chat two"}

    page.button(key=f"open-{first_id}").click().run()
    assert page.chat_message[0].markdown[0].value == "Chat one"
    assert page.query_params["chat"] == first_id

    page.button(key=f"delete-{first_id}").click().run()
    assert [summary.title for summary in store(data_dir).list()] == ["Chat two"]
    assert len(page.chat_message) == 0  # the open chat was the deleted one


def test_a_chat_deleted_in_another_tab_is_not_brought_back(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    page = send(open_page(endpoint("Tiny A", tiny_server)), "First")
    chat_id = page.query_params["chat"]
    assert store(data_dir).delete(chat_id)  # another tab deletes it
    send(page, "Second")
    assert "was deleted, in another tab or window" in page.warning[0].value
    assert store(data_dir).load(chat_id) is None
    assert [summary.title for summary in store(data_dir).list()] == ["Second"]  # a new chat, nothing lost


def test_max_tokens_setting_bounds_the_answer(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    page = open_page(endpoint("Tiny A", tiny_server))
    [max_tokens] = [widget for widget in page.number_input if widget.label == "Max tokens"]
    assert max_tokens.max == tiny_server.max_model_len  # bounded by the endpoint's context
    max_tokens.set_value(3).run()
    [system_prompt] = [widget for widget in page.text_area if widget.label == "System prompt"]
    system_prompt.set_value("Answer in one word.").run()
    send(page, "Hello")
    conversation = saved(data_dir, page)
    assert conversation.settings.max_tokens == 3
    assert conversation.settings.system_prompt == "Answer in one word."
    assert conversation.messages[-1].answers[0].stats.completion_tokens <= 3


def test_history_with_more_images_than_the_server_takes_still_works(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    page = open_page(endpoint("Tiny A", tiny_server))
    for turn, size in enumerate((96, 128, 160)):
        send(page, f"turn {turn}", png(size, size))
    assert tiny_server.image_limit == 2
    answer = saved(data_dir, page).messages[-1]
    assert answer.answers[0].status is AnswerStatus.DONE, answer.answers[0].error
    assert "the 1 oldest image(s) of this chat were left out" in answer.notices[0]
    assert any("left out" in notice.value for notice in page.chat_message[-1].info)


def test_regenerate_replaces_the_last_answer(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    page = send(open_page(endpoint("Tiny A", tiny_server), FRONTEND_MAX_TOKENS="24"), "Tell me something")
    before = saved(data_dir, page).messages[-1].answers[0]
    page.button(key="regenerate-button").click().run()
    conversation = saved(data_dir, page)
    assert len(conversation.messages) == 2
    after = conversation.messages[-1].answers[0]
    assert after.status is AnswerStatus.DONE
    assert after.content != before.content  # 24 random tokens twice: a new answer


def test_clear_chat_empties_the_conversation(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    page = send(open_page(endpoint("Tiny A", tiny_server)), "Something to forget")
    chat_id = page.query_params["chat"]
    page.button(key="clear-chat").click().run()
    assert len(page.chat_message) == 0
    assert store(data_dir).load(chat_id).messages == []


def test_a_model_never_started_is_not_started_with_how_to_start_it(
    open_page: Page, tiny_server: TinyServer
) -> None:
    never = {
        "name": "Qwen3-VL-8B",
        "base_url": f"http://127.0.0.1:{free_port()}/v1",
        "start_command": "docker compose --profile 8b up -d",
    }
    page = open_page(never, endpoint("Tiny A", tiny_server))
    assert page.radio[0].options == ["Tiny A"]
    [state] = [caption.value for caption in page.sidebar.caption if "Qwen3-VL-8B" in caption.value]
    assert "is not started" in state and "start it with `docker compose --profile 8b up -d`" in state
    assert not page.sidebar.error and not page.sidebar.warning  # not an error
    assert not page.chat_input[0].disabled


def test_with_no_model_started_the_input_is_disabled_and_says_how_to_start_one(open_page: Page) -> None:
    page = open_page({"name": "Gone", "base_url": f"http://127.0.0.1:{free_port()}/v1"})
    assert page.chat_input[0].disabled
    assert "No model is running yet" in page.sidebar.info[0].value
    assert not page.sidebar.error


def test_invalid_configuration_is_explained(open_page: Page, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTEND_ENDPOINTS", "not json")
    page = AppTest.from_file(APP, default_timeout=30)
    page.run()
    assert "FRONTEND_ENDPOINTS is not valid JSON" in page.error[0].value


def test_a_file_that_is_not_an_image_keeps_the_input(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    page = open_page(endpoint("Tiny A", tiny_server))
    send(page, "Look at these", ("notes.png", b"just some text, not a picture", "image/png"), png())
    assert len(page.chat_message) == 0  # nothing sent
    assert "notes.png" in page.error[0].value
    assert page.chat_input[0].proto.value == "Look at these"  # the text is put back
    assert "1 image(s) ready" in page.info[0].value  # the good image waits

    send(page, "Look at this one")  # the waiting image goes with the next message
    assert saved(data_dir, page).messages[0].images[0].name == "picture-300x200.png"
    assert not page.info


def test_a_corrupt_image_is_refused(open_page: Page, tiny_server: TinyServer) -> None:
    page = open_page(endpoint("Tiny A", tiny_server))
    truncated = image_bytes(400, 300, "JPEG")[:600]
    send(page, "Broken?", ("broken.jpg", truncated, "image/jpeg"))
    assert len(page.chat_message) == 0
    assert "broken.jpg" in page.error[0].value


def test_an_image_over_the_upload_cap_is_refused(open_page: Page, tiny_server: TinyServer) -> None:
    noise = Image.frombytes("RGB", (800, 800), os.urandom(800 * 800 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")
    assert buffer.tell() > 1024 * 1024
    page = open_page(endpoint("Tiny A", tiny_server), FRONTEND_MAX_UPLOAD_MB="1")
    send(page, "Too big?", ("noise.png", buffer.getvalue(), "image/png"))
    assert len(page.chat_message) == 0
    assert "noise.png" in page.error[0].value and "1 MB" in page.error[0].value


def test_more_images_in_one_message_than_the_model_takes(open_page: Page, tiny_server: TinyServer) -> None:
    page = open_page(endpoint("Tiny A", tiny_server))
    send(page, "Three at once", png(64, 64), png(96, 64), png(128, 64))
    assert len(page.chat_message) == 0
    assert "at most 2 image(s) per message and this one has 3" in page.error[0].value
    assert page.chat_input[0].proto.value == "Three at once"


def test_an_empty_message_is_not_sent(open_page: Page, tiny_server: TinyServer) -> None:
    page = send(open_page(endpoint("Tiny A", tiny_server)), "   ")
    assert len(page.chat_message) == 0
    assert "Type a message or attach an image" in page.error[0].value


def test_a_server_dying_mid_answer_keeps_the_partial_answer_and_the_history(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    port = int(tiny_server.root_url.rsplit(":", 1)[1])
    with cutting_proxy(port, cut_after_bytes=1500) as proxy_port:
        flaky = endpoint("Flaky", tiny_server, base_url=f"http://127.0.0.1:{proxy_port}/v1")
        page = send(open_page(flaky, FRONTEND_MAX_TOKENS="400"), "Long story please")
    user, assistant = page.chat_message
    assert user.markdown[0].value == "Long story please"
    assert "broke mid-answer" in assistant.warning[0].value
    assert "kept" in assistant.warning[0].value
    answer = saved(data_dir, page).messages[-1].answers[0]
    assert answer.status is AnswerStatus.INTERRUPTED
    assert answer.content and assistant.markdown[0].value


def test_a_prompt_too_long_for_the_context_is_explained(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    page = send(open_page(endpoint("Tiny A", tiny_server)), "word " * 5000)
    assert len(page.chat_message) == 2  # the message stays in the history
    assert "no longer fits Tiny A's context" in page.chat_message[1].error[0].value
    assert page.button(key="regenerate-button")  # and can be retried


def test_a_server_that_stops_answering_times_out(open_page: Page, tiny_server: TinyServer) -> None:
    port = int(tiny_server.root_url.rsplit(":", 1)[1])
    with stalling_proxy(port) as proxy_port:
        stalled = endpoint("Stalled", tiny_server, base_url=f"http://127.0.0.1:{proxy_port}/v1")
        page = send(open_page(stalled, FRONTEND_REQUEST_TIMEOUT_S="1"), "Anyone there?")
    assert "Stalled sent nothing for 1 s" in page.chat_message[1].error[0].value


def _stored_chat(data_dir: Path, answer: Answer, *, with_image: bool = True) -> Conversation:
    picture = prepare_image(image_bytes(400, 200), "street.png", token_budget=256)
    conversation = Conversation(
        title="Stored",
        messages=[
            Message(role="user", text="Where is the car?", images=[picture] if with_image else []),
            Message(role="assistant", answers=[answer]),
        ],
    )
    store(data_dir).save(conversation)
    return conversation


def test_grounding_boxes_are_drawn_under_the_answer(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    content = 'Here:\n```json\n[{"bbox_2d": [100, 200, 500, 800], "label": "car"}]\n```'
    chat = _stored_chat(data_dir, Answer(endpoint="Tiny A", content=content, status=AnswerStatus.DONE))
    page = open_page(endpoint("Tiny A", tiny_server), query={"chat": chat.id})
    [drawn] = page.chat_message[1].get("image")
    assert "1 box(es)/point(s) on street.png" in drawn.captions[0]


def test_reasoning_is_shown_in_a_collapsed_block(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    answer = Answer(
        endpoint="Tiny A", content="A red car.", reasoning="Scanning the street.", status=AnswerStatus.DONE
    )
    chat = _stored_chat(data_dir, answer, with_image=False)
    page = open_page(endpoint("Tiny A", tiny_server), query={"chat": chat.id})
    [block] = page.chat_message[1].expander
    assert block.label == "Thinking"
    assert block.markdown[0].value == "Scanning the street."
    assert [md.value for md in page.chat_message[1].markdown if md.value == "A red car."]


def test_an_answer_cut_by_a_restart_is_marked_interrupted(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    answer = Answer(
        endpoint="Tiny A", content="Half an ans", stats=AnswerStats(model="m")
    )  # still 'streaming'
    chat = _stored_chat(data_dir, answer, with_image=False)
    page = open_page(endpoint("Tiny A", tiny_server), query={"chat": chat.id})
    assert "reloaded or restarted" in page.chat_message[1].warning[0].value
    assert store(data_dir).load(chat.id).messages[1].answers[0].status is AnswerStatus.INTERRUPTED
