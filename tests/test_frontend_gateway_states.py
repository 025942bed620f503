"""The page's side of the gateway without a model: what each state in the gateway's /v1/models means for the
sidebar (a listing a real gateway is not put in on demand: a fake HTTP server answers with it), and compare
mode one answer after the other (two scripted stand-in servers record when each request arrives). The real
gateway in front of real tiny vLLMs is in tests/test_frontend_gateway.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest

from frontend.answer_stream import Target
from frontend.chat_turns import add_user_message, prepare_answers
from frontend.conversation import AnswerStatus, Conversation
from frontend.endpoint_status import State, check_endpoint
from frontend.live_answers import LiveTurn, one_after_another
from frontend.settings import Endpoint
from tests.helpers.http_server import serving
from tests.helpers.standin_server import StandIn, standin_server


@pytest.fixture
def gateway_listing() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A server answering /health and /v1/models like the gateway (GATEWAY-CONTRACT.md); the test fills the
    model cards. Yields (its base URL, the cards)."""
    cards: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/health":
                body = {"status": "ok", "models": {card["id"]: card["state"] for card in cards}}
            else:
                body = {"object": "list", "data": cards}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as port:
        yield f"http://127.0.0.1:{port}/v1", cards


def card(model: str, state: str, reason: str | None = None) -> dict[str, Any]:
    return {
        "id": model,
        "object": "model",
        "created": 1764000000,
        "owned_by": "serve-gateway",
        "state": state,
        "reason": reason,
        "max_model_len": 32768,
        "profile": model.removeprefix("qwen3-vl-"),
    }


@pytest.mark.parametrize(
    ("state", "expected", "reason"),
    [
        ("running", State.READY, ""),
        ("sleeping", State.ASLEEP, "asleep: asking it switches to it"),
        ("stopped", State.ASLEEP, "stopped: asking it starts it"),
        ("starting", State.ASLEEP, "starting: answers once it is up"),
        ("failed", State.DOWN, "the gateway could not start it: CUDA out of memory"),
    ],
)
def test_a_model_asleep_behind_the_gateway_is_pickable_not_down(
    gateway_listing: tuple[str, list[dict[str, Any]]], state: str, expected: State, reason: str
) -> None:
    base_url, cards = gateway_listing
    cards += [card("qwen3-vl-8b", "running"), card("qwen3-vl-4b", state, "CUDA out of memory")]
    status = check_endpoint(Endpoint(name="Qwen3-VL-4B", base_url=base_url, model="qwen3-vl-4b"))
    assert status.state is expected
    assert status.reason.startswith(reason)
    assert status.pickable is (expected is not State.DOWN)
    if status.pickable:
        assert (status.model.id, status.model.max_model_len) == ("qwen3-vl-4b", 32768)


def test_a_model_the_gateway_does_not_front_is_not_started_with_how_to_start_it(
    gateway_listing: tuple[str, list[dict[str, Any]]],
) -> None:
    base_url, cards = gateway_listing
    cards.append(card("qwen3-vl-4b", "running"))
    command = "docker compose --profile 8b up -d && docker compose restart gateway"
    endpoint = Endpoint(name="Qwen3-VL-8B", base_url=base_url, model="qwen3-vl-8b", start_command=command)
    status = check_endpoint(endpoint)
    assert status.state is State.NOT_STARTED
    assert "the gateway does not front 'qwen3-vl-8b' (it fronts qwen3-vl-4b)" in status.reason
    assert status.reason.endswith(f"start it with `{command}`")


def test_one_answer_after_the_other_only_when_a_model_is_asleep() -> None:
    def target(name: str, awake: bool | None) -> Target:
        return Target(Endpoint(name=name, base_url="http://gateway:8000/v1"), None, name, awake=awake)

    assert one_after_another([target("a", True), target("b", False)])
    assert not one_after_another([target("a", True), target("b", True)])  # both fit awake together
    assert not one_after_another([target("a", None), target("b", None)])  # plain vLLMs
    assert not one_after_another([target("a", False)])  # one answer


def test_compare_mode_one_after_the_other_runs_the_awake_model_first() -> None:
    """Tiny A asleep, Tiny B awake: B answers first while A's answer says it waits for B; A's request is sent
    only once B's answer has ended, then says it is switching, and keeps the switch time in its stats."""
    seen: dict[str, Any] = {}
    turn: LiveTurn | None = None

    def reply_b(messages: list[dict[str, Any]]) -> str:
        assert turn is not None
        seen["b_arrived_with_a"] = turn.message.answers[0].status
        seen["a_notice_meanwhile"] = turn.notices()[0]
        return "B answers first, one two three"

    def reply_a(messages: list[dict[str, Any]]) -> str:
        assert turn is not None
        seen["a_arrived_with_b"] = turn.message.answers[1].status
        seen["a_notice_then"] = turn.notices()[0]
        return "A answers after B"

    a, b = StandIn("model-a", reply_a, token_delay_s=0.01), StandIn("model-b", reply_b, token_delay_s=0.01)
    with standin_server(a) as a_url, standin_server(b) as b_url:
        targets = [
            Target(Endpoint(name="Tiny A", base_url=a_url), None, "model-a", awake=False),
            Target(Endpoint(name="Tiny B", base_url=b_url), None, "model-b", awake=True),
        ]
        conversation = Conversation()
        add_user_message(conversation, "Which of you is awake?", [], targets)
        message, jobs = prepare_answers(conversation, targets, timeout_s=30)
        turn = LiveTurn(conversation.id, message, jobs, lambda saved: True, sequential=True)
        turn.start(on_end=lambda ended: None)
        assert turn.wait(30)

    assert seen["b_arrived_with_a"] is AnswerStatus.STREAMING  # A not started yet: it waits its turn
    assert (
        seen["a_notice_meanwhile"] == "Waiting for Tiny B to answer first: the gateway keeps one model awake."
    )
    assert seen["a_arrived_with_b"] is AnswerStatus.DONE  # sent only after B's answer ended
    assert seen["a_notice_then"].startswith("Switching to Tiny A… (") and seen["a_notice_then"].endswith(
        " s)"
    )
    answer_a, answer_b = message.answers
    assert (answer_a.content, answer_b.content) == ("A answers after B", "B answers first, one two three")
    assert answer_a.stats.switch_time_s is not None and answer_b.stats.switch_time_s is None
    assert answer_a.stats.summary()[0].startswith("switched model in ")
    assert turn.notices() == [None, None]  # nothing is waited for any more


def test_a_stop_while_the_second_answer_waits_its_turn_never_sends_it() -> None:
    arrived: list[str] = []
    a = StandIn("model-a", lambda messages: arrived.append("a") or "never", token_delay_s=0.01)
    b = StandIn(
        "model-b", lambda messages: arrived.append("b") or " ".join(["word"] * 400), token_delay_s=0.02
    )
    with standin_server(a) as a_url, standin_server(b) as b_url:
        targets = [
            Target(Endpoint(name="Tiny A", base_url=a_url), None, "model-a", awake=False),
            Target(Endpoint(name="Tiny B", base_url=b_url), None, "model-b", awake=True),
        ]
        conversation = Conversation()
        add_user_message(conversation, "Long answer, please", [], targets)
        message, jobs = prepare_answers(conversation, targets, timeout_s=30)
        turn = LiveTurn(conversation.id, message, jobs, lambda saved: True, sequential=True)
        turn.start(on_end=lambda ended: None)
        while not message.answers[1].content:  # B streams
            assert turn.active
        turn.stop()
        assert turn.wait(10)
    assert arrived == ["b"]
    assert [answer.status for answer in message.answers] == [AnswerStatus.STOPPED, AnswerStatus.STOPPED]
