"""Answers that outlive the page run that started them, and a stop that cuts only its own stream: real tiny vLLM
servers (behind a throttling proxy for a slow, steady stream), the real OpenAI SDK, the real store."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from pydantic import SecretStr

from frontend.answer_stream import AnswerJob, Target
from frontend.chat_turns import add_user_message, prepare_answers
from frontend.conversation import AnswerStatus, Conversation, GenerationSettings
from frontend.live_answers import LiveAnswers
from frontend.settings import Endpoint
from frontend.store import ConversationStore
from tests.conftest import TinyServer
from tests.helpers.faults import throttled_proxy

pytestmark = pytest.mark.vllm

# ~200-250 bytes per SSE chunk: about 4 tokens a second.
SLOW = {"step_bytes": 60, "step_s": 0.05}


def target(server: TinyServer, base_url: str) -> Target:
    endpoint = Endpoint(name="Tiny", base_url=base_url, image_limit=server.image_limit)
    return Target(endpoint=endpoint, api_key=SecretStr(server.api_key), model=server.served_name)


def test_a_turn_streams_and_is_saved_with_no_page_run_left(tiny_server: TinyServer, tmp_path: Path) -> None:
    """The page run that started the answer is gone (a click reran the page, the tab closed): the answer still
    streams to its end and is saved, complete, by its own thread."""
    store = ConversationStore(tmp_path / "chats.sqlite3")
    with throttled_proxy(urlsplit(tiny_server.root_url).port, **SLOW) as port:
        slow = target(tiny_server, f"http://127.0.0.1:{port}/v1")
        conversation = Conversation(settings=GenerationSettings(max_tokens=24))
        user = add_user_message(conversation, "Tell me a story", [], [slow])
        turn, jobs = prepare_answers(conversation, [slow], timeout_s=60)
        store.save(conversation)
        answers = LiveAnswers()
        live = answers.start(
            conversation.id, turn, jobs, lambda m: store.update_turn(conversation.id, m, updated_at=1)
        )
        assert answers.get(conversation.id) is live
        del live, turn, jobs  # nothing of the page run is left but the store
        deadline = time.monotonic() + 120
        while answers.get(conversation.id) is not None and time.monotonic() < deadline:
            time.sleep(0.1)
    stored = store.load(conversation.id)
    assert stored.messages[0].id == user.id
    answer = stored.messages[1].answers[0]
    assert answer.status is AnswerStatus.DONE, answer.error
    assert (
        answer.stats.completion_tokens and answer.content
    )  # usage comes last: the stream was read to its end


def test_stopping_a_finished_answer_leaves_the_next_answer_on_the_shared_connection_alone(
    tiny_server: TinyServer,
) -> None:
    """Every session shares one client per endpoint, so a finished answer's connection goes back to the pool
    and carries the next answer. A late stop() of the finished one (a Stop click racing the answer's end)
    must not cut that socket: the old code kept the handle and shut it down under the other answer."""
    with throttled_proxy(urlsplit(tiny_server.root_url).port, **SLOW) as port:
        slow = target(tiny_server, f"http://127.0.0.1:{port}/v1")

        def job(max_tokens: int) -> AnswerJob:
            conversation = Conversation(settings=GenerationSettings(max_tokens=max_tokens))
            add_user_message(conversation, "Count slowly", [], [slow])
            _, [new_job] = prepare_answers(conversation, [slow], timeout_s=60)
            return new_job

        first = job(2).start()
        first.wait(60)
        assert first.answer.status is AnswerStatus.DONE, first.answer.error
        second = job(24).start()  # reuses the kept-alive connection of the first
        deadline = time.monotonic() + 60
        while not second.answer.content and time.monotonic() < deadline:
            time.sleep(0.05)
        assert second.running, "the second answer ended before the test could stop the first"
        first.stop()
        second.wait(120)
    assert second.answer.status is AnswerStatus.DONE, second.answer.error
    assert second.answer.stats.completion_tokens


def test_only_one_turn_streams_per_conversation(tiny_server: TinyServer, tmp_path: Path) -> None:
    store = ConversationStore(tmp_path / "chats.sqlite3")
    with throttled_proxy(urlsplit(tiny_server.root_url).port, **SLOW) as port:
        slow = target(tiny_server, f"http://127.0.0.1:{port}/v1")
        conversation = Conversation(settings=GenerationSettings(max_tokens=24))
        add_user_message(conversation, "One", [], [slow])
        turn, jobs = prepare_answers(conversation, [slow], timeout_s=60)
        store.save(conversation)
        answers = LiveAnswers()
        live = answers.start(
            conversation.id, turn, jobs, lambda m: store.update_turn(conversation.id, m, updated_at=1)
        )
        other = conversation.model_copy(deep=True)
        other.messages.pop()  # the same question, asked again while the first answer streams
        _, more = prepare_answers(other, [slow], timeout_s=60)
        with pytest.raises(RuntimeError, match="already has an answer streaming"):
            answers.start(conversation.id, turn, more, lambda m: True)
        live.stop()
    assert not live.active and answers.get(conversation.id) is None
    assert store.load(conversation.id).messages[1].answers[0].status is AnswerStatus.STOPPED
