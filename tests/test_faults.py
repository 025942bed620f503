"""Faults: vLLM killed mid-answer and brought back, an endpoint that never started, a slow server, a server
restarted with another model behind the same URL, and the frontend restarted mid-conversation.

The vLLM faults use a dedicated tiny server (module fixture) on a fixed port, so that the tests can kill it
and start it again where the page expects it; the other tests use the session's `tiny_server`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import psutil
import pytest
from playwright.sync_api import expect, sync_playwright
from streamlit.testing.v1 import AppTest

from frontend.conversation import Answer, AnswerStatus, Conversation
from frontend.store import ConversationStore
from frontend.ui.state import live_answers
from harness.serve_up import ServeUp, free_port
from harness.tiny_checkpoint import harness_env, write_tiny_profile
from tests.conftest import TinyServer
from tests.helpers.faults import silent_server, stalling_proxy, throttled_proxy
from tests.helpers.page import saved, send, start_page, stats_lines
from tests.helpers.streamlit_app import StreamlitApp, launch_chromium, wait_for_app_idle

pytestmark = pytest.mark.vllm

STARTUP_TIMEOUT_S = 300
WAIT_S = 120
WAIT_MS = WAIT_S * 1000
FIRST_NAME = "tiny-fault-a"
RENAMED = "tiny-fault-b"
STATUS_TTL_S = 5.0  # frontend/ui/sidebar.py caches endpoint states this long
STATS = '[class*="st-key-answer-stats"]'
ATTEMPTS = 10  # the random tiny model often ends its answer within a few tokens: ask again
Page = Callable[..., AppTest]


class Ended:
    """The page's run ended before the answer was seen streaming (a short answer): ask again."""


def poll(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.02) -> Any:
    """condition()'s first truthy value, checked every `interval` seconds; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


# ----------------------------------------------------------------------------------------- fault injectors


@dataclass
class SwitchingProxy:
    """A TCP proxy whose upstream port can be changed at once: a different server behind the same URL."""

    upstream_port: int
    port: int = 0
    _listener: socket.socket | None = None
    _opened: list[socket.socket] = field(default_factory=list)

    def __enter__(self) -> SwitchingProxy:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._listener is not None
        self._listener.close()
        for sock in self._opened:
            with contextlib.suppress(OSError):
                sock.close()

    def _serve(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            self._opened.extend((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_copy, args=(source, sink), daemon=True).start()


def _copy(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)


# --------------------------------------------------------------------------------- a server to kill


@dataclass
class RestartableServer:
    """`serve up` of the tiny checkpoint on one fixed port, to be killed and started again there."""

    run_dir: Path
    checkpoint: Path
    api_key: str
    port: int = field(default_factory=free_port)
    served_name: str = ""
    serve_up: ServeUp | None = None
    starts: int = 0

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    @property
    def running(self) -> bool:
        return self.serve_up is not None and self.serve_up.process.poll() is None

    def start(self, served_name: str) -> None:
        assert not self.running
        self.starts += 1
        work = self.run_dir / f"start-{self.starts}"
        profile = write_tiny_profile(
            work / "tiny.yaml", checkpoint=self.checkpoint, served_name=served_name, port=self.port
        )
        self.serve_up = ServeUp(
            args=[str(profile), "--log-file", str(work / "vllm.log")],
            env={**harness_env(cache_dir=work), "VLLM_API_KEY": self.api_key},
            workdir=work,
        ).start()
        self.serve_up.wait_ready(STARTUP_TIMEOUT_S)
        self.served_name = served_name

    def ensure(self, served_name: str | None = None) -> None:
        """Running (and serving `served_name`, when given), whatever an earlier test left."""
        if self.running and served_name in (None, self.served_name):
            return
        self.stop()
        self.start(served_name or FIRST_NAME)

    def signal_vllm(self, sig: signal.Signals) -> None:
        """Signal vLLM's whole process group (API server and engine); SIGKILL is what an OOM killer does."""
        assert self.serve_up is not None
        (api_server,) = psutil.Process(self.serve_up.process.pid).children()
        os.killpg(api_server.pid, sig)  # serve up starts vLLM in its own session

    def stop(self) -> None:
        if self.serve_up is not None:
            if self.running:
                assert self.serve_up.stop() == 0, self.serve_up.output()[-3000:]
            self.serve_up.kill_everything()


@pytest.fixture(scope="module")
def fault_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path, tiny_server: TinyServer
) -> Iterator[RestartableServer]:
    """Started with the session server's key, so that both can stand behind one proxy URL (one page key)."""
    server = RestartableServer(tmp_path_factory.mktemp("fault-server"), tiny_checkpoint, tiny_server.api_key)
    server.start(FIRST_NAME)
    try:
        yield server
    finally:
        server.stop()


def waiting_for_more(answer: Answer, quiet_s: float = 1.0, timeout: float = 30.0) -> bool:
    """With the server frozen: True once the answer stopped growing for `quiet_s` and is still streaming
    (the page read all that was sent and waits for more); False when it ended instead."""
    deadline = time.monotonic() + timeout
    length, since = len(answer.content), time.monotonic()
    while time.monotonic() < deadline:
        if answer.status is not AnswerStatus.STREAMING:
            return False
        if len(answer.content) != length:
            length, since = len(answer.content), time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return True
        time.sleep(0.05)
    pytest.fail(f"the answer kept growing for {timeout} s with the server frozen")


# ------------------------------------------------------------------------------------------------ the page


def endpoint(name: str, base_url: str, api_key: str | None = None, image_limit: int = 2) -> dict[str, Any]:
    return {"name": name, "base_url": base_url, "api_key": api_key, "image_limit": image_limit}


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def open_page(monkeypatch: pytest.MonkeyPatch, data_dir: Path) -> Page:
    def start(*endpoints: dict[str, Any], **variables: str) -> AppTest:
        return start_page(monkeypatch, data_dir, endpoints, timeout_s=WAIT_S, **variables)

    return start


def sidebar_text(page: AppTest) -> str:
    return "\n".join(
        element.value for kind in ("caption", "error") for element in getattr(page.sidebar, kind)
    )


def model_caption(page: AppTest) -> str:
    [radio] = page.radio
    return " ".join(radio.proto.captions)


def set_max_tokens(page: AppTest, value: int) -> None:
    [field] = [widget for widget in page.number_input if widget.label == "Max tokens"]
    field.set_value(value).run()
    assert not page.exception, page.exception


# ------------------------------------------------------------------------------------- (1) vLLM killed


def test_vllm_killed_mid_answer_keeps_the_partial_answer_and_the_chat_goes_on_after_a_restart(
    open_page: Page, data_dir: Path, fault_server: RestartableServer
) -> None:
    fault_server.ensure(FIRST_NAME)
    page = open_page(endpoint("Faulty", fault_server.base_url, fault_server.api_key))
    send(page, "Hello first.")
    conversation_id = page.session_state["chat"].conversation.id
    assert stats_lines(page.chat_message[1])
    set_max_tokens(
        page, 1500
    )  # a long answer to interrupt (short ones before and after: the context is 2,048)

    # A long answer, killed while it streams. vLLM is frozen first (SIGSTOP): if the page then still waits
    # for more of the answer once it has read everything already sent, vLLM was mid-answer and is killed;
    # if the answer had all been sent (a short one, or a page reading behind), vLLM resumes and the question
    # is asked again.
    for attempt in range(1, ATTEMPTS + 1):
        done = threading.Event()

        def ask(
            question: str = f"Tell me a long story ({attempt}).", finished: threading.Event = done
        ) -> None:
            send(page, question)
            finished.set()

        runner = threading.Thread(target=ask)
        runner.start()

        def streaming(finished: threading.Event = done) -> Answer | Ended | None:
            # The answer streams in the process's live turn (the page's runs only draw it); a short answer
            # can end, and its turn be forgotten, before this sees it.
            if (turn := live_answers().get(conversation_id)) is not None and turn.message.answers:
                answer = turn.message.answers[0]
                if answer.status is not AnswerStatus.STREAMING or answer.content:
                    return answer
            return Ended() if finished.is_set() else None

        answer = poll(streaming, WAIT_S, "the answer to stream")
        if isinstance(answer, Answer) and answer.status is AnswerStatus.STREAMING:
            fault_server.signal_vllm(signal.SIGSTOP)
            if waiting_for_more(answer):
                seen = answer.content
                fault_server.signal_vllm(signal.SIGKILL)
                break
            fault_server.signal_vllm(signal.SIGCONT)
        runner.join(WAIT_S)
    else:
        pytest.fail(f"every one of {ATTEMPTS} answers ended before it could be interrupted")
    runner.join(WAIT_S)
    assert done.is_set(), "the page did not finish its run after the server died"

    # The partial answer is kept, marked interrupted, saved; the sidebar says the server is down.
    last = page.chat_message[-1]
    assert "broke mid-answer" in last.warning[0].value and "kept" in last.warning[0].value
    assert last.markdown[0].value  # the partial answer is shown
    stored = saved(data_dir, page).messages[-1].answers[0]
    assert stored.status is AnswerStatus.INTERRUPTED
    assert stored.content.startswith(seen) and stored.content
    assert "Faulty** is down" in sidebar_text(page) and "connection refused" in sidebar_text(page)
    assert page.chat_input[0].disabled  # the only endpoint is down
    # serve up noticed too: exit 1 with a clear message, nothing left behind.
    assert fault_server.serve_up.wait_exit(60) == 1
    assert "vLLM exited unexpectedly after it was ready (code -9)" in fault_server.serve_up.output()
    assert fault_server.serve_up.leftovers() == []

    # The server comes back on the same port: the next message in the same conversation is answered.
    chat_id = page.query_params["chat"]
    fault_server.start(FIRST_NAME)
    poll(lambda: not page.run().chat_input[0].disabled, WAIT_S, "the page to see the server again", 1.0)
    set_max_tokens(page, 12)
    send(page, "Are you back?")
    assert page.query_params["chat"] == chat_id
    history = saved(data_dir, page).messages
    assert history[-1].answers[0].status is AnswerStatus.DONE, history[-1].answers[0].error
    assert f"`{FIRST_NAME}`" in stats_lines(page.chat_message[-1])[0]
    assert [m.role for m in history] == ["user", "assistant"] * (len(history) // 2)
    assert history[-3].answers[0].status is AnswerStatus.INTERRUPTED  # still there, still marked
    assert history[-1].answers[0].status is AnswerStatus.DONE


# ---------------------------------------------------------------------------- (2) never started, unreachable


def test_endpoints_that_never_started_say_why_and_the_ready_one_answers(
    open_page: Page, tiny_server: TinyServer
) -> None:
    with silent_server() as hung_port:
        page = open_page(
            endpoint("Refused", f"http://127.0.0.1:{free_port()}/v1"),
            endpoint("Unknown host", "http://vllm-8b.invalid:8000/v1"),
            endpoint("Hung", f"http://127.0.0.1:{hung_port}/v1"),
            endpoint("Tiny", tiny_server.base_url, tiny_server.api_key),
        )
    text = sidebar_text(page)
    assert "Refused** is not started: nothing listens on 127.0.0.1:" in text
    assert (
        "Unknown host** is not started: no host vllm-8b.invalid (in compose: its service is not running)"
        in text
    )
    assert "Hung** is down: no answer within 2 s" in text
    assert page.radio[0].options == ["Tiny"]
    assert not page.chat_input[0].disabled
    send(page, "Who is there?")
    assert f"`{tiny_server.served_name}`" in stats_lines(page.chat_message[1])[0]


def test_with_no_endpoint_ready_the_input_is_disabled_and_the_page_says_why(open_page: Page) -> None:
    page = open_page(endpoint("Refused", f"http://127.0.0.1:{free_port()}/v1"))
    assert page.chat_input[0].disabled
    assert "No model is running yet" in page.sidebar.info[0].value
    assert "not running, or still loading" in sidebar_text(page)
    assert not page.radio  # nothing to pick


# ------------------------------------------------------------------------------------------- (3) slow


def test_a_server_that_never_answers_is_given_up_after_the_configured_timeout(
    open_page: Page, tiny_server: TinyServer
) -> None:
    port = urlsplit(tiny_server.root_url).port
    with stalling_proxy(port) as proxy_port:
        page = open_page(
            endpoint("Stalled", f"http://127.0.0.1:{proxy_port}/v1", tiny_server.api_key),
            FRONTEND_REQUEST_TIMEOUT_S="3",
        )
        started = time.monotonic()
        send(page, "Anyone there?")
        waited = time.monotonic() - started
    assert "Stalled sent nothing for 3 s" in page.chat_message[1].error[0].value
    assert "FRONTEND_REQUEST_TIMEOUT_S" in page.chat_message[1].error[0].value
    assert 3 <= waited < 3 + 2.5, f"gave up after {waited:.1f} s"


def test_a_server_that_stalls_mid_answer_times_out_and_keeps_the_partial_answer(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    port = urlsplit(tiny_server.root_url).port
    # Headers and the first few SSE chunks pass, then nothing; the connection stays open.
    with throttled_proxy(port, step_bytes=65536, step_s=0, hold_after_bytes=2500) as proxy_port:
        page = open_page(
            endpoint("Stalling", f"http://127.0.0.1:{proxy_port}/v1", tiny_server.api_key),
            FRONTEND_REQUEST_TIMEOUT_S="2",
            FRONTEND_MAX_TOKENS="400",
        )
        for attempt in range(1, ATTEMPTS + 1):
            started = time.monotonic()
            send(page, f"Tell me a long story ({attempt}).")
            waited = time.monotonic() - started
            answer = saved(data_dir, page).messages[-1].answers[0]
            if answer.status is not AnswerStatus.DONE:
                break  # else the random model ended within the first chunks: ask again
    assert answer.status is AnswerStatus.INTERRUPTED, answer.error
    assert answer.content
    warning = page.chat_message[-1].warning[0].value
    assert "Stalling sent nothing for 2 s" in warning and "kept" in warning
    assert waited < 2 + 10, f"gave up after {waited:.1f} s"


# -------------------------------------------------------------------- (4) another model behind the same URL


def test_a_server_restarted_with_another_model_is_noticed(
    open_page: Page, data_dir: Path, fault_server: RestartableServer
) -> None:
    fault_server.ensure(FIRST_NAME)
    page = open_page(endpoint("Same URL", fault_server.base_url, fault_server.api_key))
    assert f"`{FIRST_NAME}`" in model_caption(page)
    send(page, "Who are you?")
    assert f"`{FIRST_NAME}`" in stats_lines(page.chat_message[1])[0]

    fault_server.stop()
    fault_server.start(RENAMED)
    # The starts take far longer than the 5 s the page caches the endpoint states: one run sees the new id.
    page.run()
    assert f"`{RENAMED}`" in model_caption(page), model_caption(page)
    send(page, "And now?")
    assert f"`{RENAMED}`" in stats_lines(page.chat_message[3])[0]
    assert f"`{FIRST_NAME}`" in stats_lines(page.chat_message[1])[0]  # the history still says who answered
    answers = [m.answers[0] for m in saved(data_dir, page).messages[1::2]]
    assert [a.stats.model for a in answers] == [FIRST_NAME, RENAMED]


def test_a_model_swapped_while_the_page_has_it_cached_fails_clearly_then_works(
    open_page: Page, data_dir: Path, fault_server: RestartableServer, tiny_server: TinyServer
) -> None:
    """The swap happens within the page's 5 s status cache: the first request still names the old model."""
    fault_server.ensure()
    with SwitchingProxy(urlsplit(tiny_server.root_url).port) as proxy:
        page = open_page(endpoint("Swapped", f"http://127.0.0.1:{proxy.port}/v1", tiny_server.api_key))
        assert f"`{tiny_server.served_name}`" in model_caption(page)
        proxy.upstream_port = fault_server.port  # the other model, behind the same URL, at once
        send(page, "Still you?")

        [error] = page.chat_message[1].error
        assert "does not serve that model any more" in error.value
        # The page dropped its cached state after the failure: the next run shows the new model...
        new_name = fault_server.served_name
        assert f"`{new_name}`" in model_caption(page), model_caption(page)
        send(page, "And now?")
    assert f"`{new_name}`" in stats_lines(page.chat_message[3])[0]  # ...and the next answer comes from it
    answers = [m.answers[0] for m in saved(data_dir, page).messages[1::2]]
    assert [a.status for a in answers] == [AnswerStatus.FAILED, AnswerStatus.DONE]


def test_an_engine_crash_ends_the_api_server_so_restart_policies_apply(
    fault_server: RestartableServer,
) -> None:
    """Only vLLM's engine process dies (the OOM killer picks the biggest process). Docker restarts a container
    whose main process exits, not one that is merely unhealthy: the API server must exit too, and `serve up`
    with it. Kills the module's server for good: any later test starts it again."""
    fault_server.ensure()
    assert fault_server.serve_up is not None
    (api_server,) = psutil.Process(fault_server.serve_up.process.pid).children()
    [engine] = [
        p for p in api_server.children(recursive=True) if "EngineCore" in " ".join([*p.cmdline(), p.name()])
    ]
    engine.kill()
    poll(lambda: not api_server.is_running(), 60, "the API server to exit after its engine died", 0.2)
    assert fault_server.serve_up.wait_exit(60) == 1
    assert "vLLM exited unexpectedly after it was ready" in fault_server.serve_up.output()
    assert fault_server.serve_up.leftovers() == []


# --------------------------------------------------------------------------- (5) the frontend restarted


def test_the_frontend_killed_mid_answer_and_restarted_keeps_the_conversation(
    tiny_server: TinyServer, tmp_path: Path
) -> None:
    data_dir = tmp_path / "data"
    port = urlsplit(tiny_server.root_url).port
    # The answer trickles in (about 10 tokens/s), so the page has saved part of it when it is killed.
    with throttled_proxy(port, step_bytes=128, step_s=0.05) as proxy_port:
        env = {
            "FRONTEND_ENDPOINTS": json.dumps(
                [endpoint("Tiny", f"http://127.0.0.1:{proxy_port}/v1", tiny_server.api_key)]
            ),
            "FRONTEND_DATA_DIR": str(data_dir),
            "FRONTEND_MAX_TOKENS": "300",
        }
        app = StreamlitApp(env=env, workdir=tmp_path / "streamlit").start()
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                page = browser.new_context().new_page()
                page.set_default_timeout(WAIT_MS)
                page.goto(app.url)
                wait_for_app_idle(page, WAIT_MS)
                store = ConversationStore(data_dir / "chats.sqlite3")
                for attempt in range(1, ATTEMPTS + 1):
                    page.get_by_test_id("stChatInputTextArea").fill(f"Tell me a long story ({attempt}).")
                    page.get_by_test_id("stChatInputSubmitButton").click()

                    def partly_saved(count: int = 2 * attempt) -> tuple[Conversation, Answer] | None:
                        for summary in store.list():
                            chat = store.load(summary.id)
                            if chat and len(chat.messages) == count and chat.messages[-1].answers:
                                answer = chat.messages[-1].answers[0]
                                if answer.status is not AnswerStatus.STREAMING or answer.content:
                                    return chat, answer
                        return None

                    chat, answer = poll(partly_saved, WAIT_S, "a partly saved answer", 0.1)
                    if answer.status is AnswerStatus.STREAMING:
                        break
                    wait_for_app_idle(page, WAIT_MS)  # it ended before a save mid-stream: ask again
                else:
                    pytest.fail(f"no answer was saved mid-stream in {ATTEMPTS} attempts")
                os.killpg(app.process.pid, signal.SIGKILL)  # the frontend crashes mid-answer
                app.process.wait(30)
                app.start()
                page.goto(f"{app.url}/?chat={chat.id}")  # what a reload of the page's URL does
                wait_for_app_idle(page, WAIT_MS)

                messages = page.get_by_test_id("stChatMessage")
                expect(messages).to_have_count(2 * attempt, timeout=WAIT_MS)
                expect(messages.nth(2 * attempt - 2)).to_contain_text(f"Tell me a long story ({attempt}).")
                expect(messages.last).to_contain_text("reloaded or restarted", timeout=WAIT_MS)
                expect(messages.last.get_by_test_id("stMarkdownContainer").first).not_to_be_empty()

                page.get_by_test_id("stChatInputTextArea").fill("Where were we?")
                page.get_by_test_id("stChatInputSubmitButton").click()
                expect(messages).to_have_count(2 * attempt + 2, timeout=WAIT_MS)
                expect(messages.last.locator(STATS)).to_have_count(1, timeout=WAIT_MS)
            finally:
                browser.close()
                app.stop()
    after = store.load(chat.id)
    assert after is not None and len(after.messages) == 2 * attempt + 2
    interrupted = after.messages[-3].answers[0]
    assert interrupted.status is AnswerStatus.INTERRUPTED and interrupted.content.startswith(answer.content)
    assert after.messages[-1].answers[0].status is AnswerStatus.DONE
