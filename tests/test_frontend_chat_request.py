"""Requests built from the history: image limit, reasoning never re-sent, each model's own answers."""

from __future__ import annotations

import pytest

from frontend.chat_request import LEFT_OUT_IMAGE, TooManyImages, build_request, check_new_images
from frontend.conversation import Answer, AnswerStatus, GenerationSettings, ImageAttachment, Message


def image(name: str) -> ImageAttachment:
    return ImageAttachment(
        name=name,
        mime_type="image/png",
        data_base64="aW1n",
        width=64,
        height=64,
        original_width=64,
        original_height=64,
        tokens=4,
    )


def user(text: str, *names: str) -> Message:
    return Message(role="user", text=text, images=[image(name) for name in names])


def assistant(*answers: Answer) -> Message:
    return Message(role="assistant", answers=list(answers))


def image_urls(messages: list[dict]) -> list[str]:
    return [
        part["image_url"]["url"]
        for message in messages
        if isinstance(message["content"], list)
        for part in message["content"]
        if part["type"] == "image_url"
    ]


def test_images_first_then_text_and_a_system_prompt() -> None:
    request = build_request(
        [user("what is it?", "a.png")],
        GenerationSettings(system_prompt="Be brief."),
        endpoint="A",
        image_limit=4,
    )
    assert request.messages[0] == {"role": "system", "content": "Be brief."}
    parts = request.messages[1]["content"]
    assert [part["type"] for part in parts] == ["image_url", "text"]
    assert parts[0]["image_url"]["url"] == "data:image/png;base64,aW1n"
    assert parts[1]["text"] == "what is it?"
    assert (request.images_sent, request.images_left_out) == (1, 0)


def test_no_system_message_when_the_prompt_is_blank() -> None:
    request = build_request([user("hi")], GenerationSettings(system_prompt="  "), endpoint="A", image_limit=4)
    assert [message["role"] for message in request.messages] == ["user"]


def test_history_over_the_image_limit_keeps_the_most_recent_images() -> None:
    history = [
        user("one", "1.png", "2.png"),
        assistant(Answer(endpoint="A", content="ok", status=AnswerStatus.DONE)),
        user("two", "3.png"),
        assistant(Answer(endpoint="A", content="ok", status=AnswerStatus.DONE)),
        user("three", "4.png"),
    ]
    request = build_request(history, GenerationSettings(), endpoint="A", image_limit=2)
    assert len(image_urls(request.messages)) == 2
    assert (request.images_sent, request.images_left_out) == (2, 2)
    first_turn = request.messages[0]["content"]
    assert [part.get("text") for part in first_turn] == [LEFT_OUT_IMAGE, LEFT_OUT_IMAGE, "one"]
    assert request.messages[2]["content"][0]["type"] == "image_url"  # 3.png kept
    notice = request.notice("A", 2)
    assert notice is not None and "2 oldest image(s)" in notice and "at most 2" in notice


def test_a_text_only_endpoint_gets_no_images() -> None:
    request = build_request([user("x", "1.png")], GenerationSettings(), endpoint="A", image_limit=0)
    assert image_urls(request.messages) == []
    assert request.images_left_out == 1


def test_reasoning_is_never_sent_back_and_failed_answers_are_skipped() -> None:
    history = [
        user("q1"),
        assistant(
            Answer(endpoint="A", content="answer one", reasoning="SECRET THOUGHTS", status=AnswerStatus.DONE)
        ),
        user("q2"),
        assistant(Answer(endpoint="A", content="", status=AnswerStatus.FAILED, error="down")),
        user("q3"),
    ]
    request = build_request(history, GenerationSettings(), endpoint="A", image_limit=4)
    assert [message["role"] for message in request.messages] == ["user", "assistant", "user", "user"]
    assert request.messages[1]["content"] == "answer one"
    assert "SECRET" not in str(request.messages)


def test_in_compare_mode_each_model_continues_from_its_own_answer() -> None:
    history = [
        user("q1"),
        assistant(
            Answer(endpoint="8B", content="from 8B", status=AnswerStatus.DONE),
            Answer(endpoint="4B", content="from 4B", status=AnswerStatus.DONE),
        ),
        user("q2"),
    ]
    for endpoint, expected in (("8B", "from 8B"), ("4B", "from 4B"), ("other", "from 8B")):
        request = build_request(history, GenerationSettings(), endpoint=endpoint, image_limit=4)
        assert request.messages[1]["content"] == expected


def test_a_message_with_more_images_than_the_endpoint_takes_is_refused() -> None:
    check_new_images(2, "A", 2)
    with pytest.raises(TooManyImages, match=r"A takes at most 2 image\(s\) per message and this one has 3"):
        check_new_images(3, "A", 2)


def test_fewer_images_than_the_limit_are_all_sent() -> None:
    history = [user("three", "1.png", "2.png", "3.png")]
    request = build_request(history, GenerationSettings(), endpoint="A", image_limit=5)
    assert (request.images_sent, request.images_left_out) == (3, 0)


def test_images_are_prepared_within_every_target_servers_cap() -> None:
    from frontend.answer_stream import Target
    from frontend.chat_turns import image_budget
    from frontend.settings import Endpoint

    def target(cap: int | None) -> Target:
        return Target(
            endpoint=Endpoint(name="x", base_url="http://h:1/v1", max_image_tokens=cap),
            api_key=None,
            model="m",
        )

    assert image_budget(4096, [target(1280)]) == 1280
    assert image_budget(4096, [target(1280), target(640)]) == 640  # compare mode: the smaller cap
    assert image_budget(512, [target(1280)]) == 512
    assert image_budget(4096, [target(None)]) == 4096
