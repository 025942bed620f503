"""Streaming answers from the real tiny vLLM server: stats, stop, and every way the request can fail."""

from __future__ import annotations

import time

import pytest
from pydantic import SecretStr

from frontend.answer_stream import AnswerJob, Target
from frontend.chat_request import build_request
from frontend.conversation import Answer, AnswerStatus, GenerationSettings, Message
from frontend.settings import Endpoint
from harness.serve_up import free_port
from tests.conftest import TinyServer
from tests.helpers.faults import cutting_proxy, silent_server

pytestmark = pytest.mark.vllm


def target_for(
    server: TinyServer, *, base_url: str | None = None, key: str | None = "server", limit: int = 2
) -> Target:
    api_key = SecretStr(server.api_key if key == "server" else key) if key else None
    endpoint = Endpoint(name="Tiny", base_url=base_url or server.base_url, image_limit=limit)
    return Target(
        endpoint=endpoint, api_key=api_key, model=server.served_name, max_model_len=server.max_model_len
    )


def run_job(
    target: Target, history: list[Message], settings: GenerationSettings, *, timeout_s: float = 60.0
) -> AnswerJob:
    request = build_request(
        history, settings, endpoint=target.endpoint.name, image_limit=target.endpoint.image_limit
    )
    job = AnswerJob(
        target=target, request=request, settings=settings, answer=Answer(endpoint="Tiny"), timeout_s=timeout_s
    )
    job.start().wait(120)
    assert not job.running
    return job


def ask(text: str) -> list[Message]:
    return [Message(role="user", text=text)]


def test_a_streamed_answer_reports_model_timing_and_usage(tiny_server: TinyServer) -> None:
    job = run_job(target_for(tiny_server), ask("Describe a cat."), GenerationSettings(max_tokens=16))
    answer = job.answer
    assert answer.status is AnswerStatus.DONE, answer.error
    assert answer.content
    stats = answer.stats
    assert stats.model == tiny_server.served_name
    assert stats.completion_tokens is not None and 1 <= stats.completion_tokens <= 16
    assert stats.prompt_tokens is not None and stats.prompt_tokens > 5
    assert stats.time_to_first_token_s is not None and 0 < stats.time_to_first_token_s <= stats.total_time_s
    assert stats.tokens_per_second is not None and stats.tokens_per_second > 0


def test_images_count_in_the_prompt(tiny_server: TinyServer) -> None:
    from frontend.images import prepare_image
    from tests.helpers.images import image_bytes

    picture = prepare_image(image_bytes(300, 200), "gradient.png", token_budget=64)
    text_only = run_job(target_for(tiny_server), ask("What is it?"), GenerationSettings(max_tokens=2))
    with_image = run_job(
        target_for(tiny_server),
        [Message(role="user", text="What is it?", images=[picture])],
        GenerationSettings(max_tokens=2),
    )
    assert with_image.answer.status is AnswerStatus.DONE, with_image.answer.error
    assert with_image.answer.stats.prompt_tokens > text_only.answer.stats.prompt_tokens


def test_stop_keeps_what_arrived(tiny_server: TinyServer) -> None:
    history = ask("Tell a very long story.")
    settings = GenerationSettings(max_tokens=1500)
    request = build_request(history, settings, endpoint="Tiny", image_limit=2)
    job = AnswerJob(
        target=target_for(tiny_server), request=request, settings=settings, answer=Answer(endpoint="Tiny")
    )
    job.start()
    deadline = time.monotonic() + 60
    while not job.answer.content and time.monotonic() < deadline:
        time.sleep(0.05)
    job.stop()
    job.wait(10)
    assert not job.running
    assert job.answer.status is AnswerStatus.STOPPED
    assert job.answer.content  # the partial answer is kept
    assert job.answer.error is None


def test_endpoint_down(tiny_server: TinyServer) -> None:
    job = run_job(
        target_for(tiny_server, base_url=f"http://127.0.0.1:{free_port()}/v1"),
        ask("hi"),
        GenerationSettings(),
    )
    assert job.answer.status is AnswerStatus.FAILED
    assert "Cannot reach Tiny" in job.answer.error


def test_wrong_api_key(tiny_server: TinyServer) -> None:
    job = run_job(target_for(tiny_server, key="not-the-key"), ask("hi"), GenerationSettings())
    assert job.answer.status is AnswerStatus.FAILED
    assert "refused the API key" in job.answer.error and "FRONTEND_API_KEY" in job.answer.error
    assert "not-the-key" not in job.answer.error


def test_too_long_for_the_context(tiny_server: TinyServer) -> None:
    job = run_job(target_for(tiny_server), ask("word " * 5000), GenerationSettings(max_tokens=8))
    assert job.answer.status is AnswerStatus.FAILED
    assert "no longer fits Tiny's context" in job.answer.error
    assert "2048" in job.answer.error  # vLLM's own numbers are kept


def test_more_images_than_the_server_takes(tiny_server: TinyServer) -> None:
    from frontend.images import prepare_image
    from tests.helpers.images import image_bytes

    pictures = [prepare_image(image_bytes(64 + 32 * n, 64), f"{n}.png", token_budget=64) for n in range(3)]
    # The endpoint is configured with a higher limit than the server's 2, so the server refuses.
    job = run_job(
        target_for(tiny_server, limit=5),
        [Message(role="user", text="x", images=pictures)],
        GenerationSettings(),
    )
    assert job.answer.status is AnswerStatus.FAILED
    assert "takes at most 2 image(s)" in job.answer.error and "image_limit" in job.answer.error


def test_a_server_that_dies_mid_answer_keeps_the_partial_answer(tiny_server: TinyServer) -> None:
    port = int(tiny_server.root_url.rsplit(":", 1)[1])
    # Headers plus a few SSE chunks (each ~250 bytes), then the connection drops.
    with cutting_proxy(port, cut_after_bytes=1500) as proxy_port:
        job = run_job(
            target_for(tiny_server, base_url=f"http://127.0.0.1:{proxy_port}/v1"),
            ask("Tell a long story."),
            GenerationSettings(max_tokens=400),
        )
    assert job.answer.status is AnswerStatus.INTERRUPTED, (job.answer.status, job.answer.error)
    assert job.answer.content
    assert "broke mid-answer" in job.answer.error


def test_a_server_that_never_answers_times_out() -> None:
    with silent_server() as port:
        target = Target(
            endpoint=Endpoint(name="Hung", base_url=f"http://127.0.0.1:{port}/v1"), api_key=None, model="m"
        )
        started = time.monotonic()
        job = run_job(target, ask("hi"), GenerationSettings(), timeout_s=1.0)
    assert job.answer.status is AnswerStatus.FAILED
    assert "sent nothing for 1 s" in job.answer.error and "FRONTEND_REQUEST_TIMEOUT_S" in job.answer.error
    assert time.monotonic() - started < 10  # one retry at most, not the SDK's default backoff chain
