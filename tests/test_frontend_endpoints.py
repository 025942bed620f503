"""The page's settings (FRONTEND_* variables) and the endpoint probe, against a small local HTTP server that
answers like vLLM (states a real server cannot be put in on demand) and against the real tiny vLLM."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from frontend.endpoint_status import ReadySeen, State, check_endpoint, check_endpoints
from frontend.settings import Endpoint, FrontendSettings, SettingsInvalid, load_settings
from tests.helpers.http_server import serving
from tests.helpers.standin_server import StandIn, standin_server

REPO = Path(__file__).resolve().parents[1]


@dataclass
class FakeVllm:
    """What the fake server answers; `seen_authorization` records the headers it got."""

    base_url: str = ""
    health_status: int = 200
    models_status: int = 200
    model_id: str = "qwen3-vl-4b"
    max_model_len: int = 32768
    # More models behind the same URL, as a router or gateway lists them: (id, max_model_len).
    more_models: list[tuple[str, int]] = field(default_factory=list)
    seen_authorization: list[str | None] = field(default_factory=list)

    def models_body(self) -> bytes:
        cards = [
            {
                "id": model_id,
                "object": "model",
                "created": 1764000000,
                "owned_by": "vllm",
                "root": "Qwen/Qwen3-VL-4B-Instruct",
                "parent": None,
                "max_model_len": max_model_len,
                "permission": [],
            }
            for model_id, max_model_len in [(self.model_id, self.max_model_len), *self.more_models]
        ]
        return json.dumps({"object": "list", "data": cards}).encode()


@pytest.fixture
def fake_vllm() -> Iterator[FakeVllm]:
    state = FakeVllm()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            state.seen_authorization.append(self.headers.get("Authorization"))
            if self.path == "/health":
                self._answer(state.health_status, b"")
            elif self.path == "/v1/models":
                self._answer(state.models_status, state.models_body())
            else:
                self._answer(404, b'{"detail": "Not Found"}')

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    with serving(Handler) as port:
        state.base_url = f"http://127.0.0.1:{port}/v1"
        yield state


@pytest.fixture
def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture(autouse=True)
def clean_frontend_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FRONTEND_ENDPOINTS", raising=False)
    monkeypatch.delenv("FRONTEND_API_KEY", raising=False)


# --------------------------------------------------------------------------------------------------- settings


def test_default_endpoints_are_the_bare_metal_ports() -> None:
    settings = load_settings()
    assert [e.base_url for e in settings.endpoints] == [
        "http://127.0.0.1:8000/v1",
        "http://127.0.0.1:8001/v1",
    ]
    assert settings.api_key is None


def test_endpoints_from_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "FRONTEND_ENDPOINTS",
        '[{"name": "8B", "base_url": "http://vllm-8b:8000/v1/"}, '
        '{"name": "4B", "base_url": "https://models.example/v1", "api_key": "own"}]',
    )
    monkeypatch.setenv("FRONTEND_API_KEY", "shared")
    settings = load_settings()
    assert [(e.name, e.base_url, e.root_url) for e in settings.endpoints] == [
        ("8B", "http://vllm-8b:8000/v1", "http://vllm-8b:8000"),
        ("4B", "https://models.example/v1", "https://models.example"),
    ]
    keys = [settings.key_for(e) for e in settings.endpoints]
    assert [key.get_secret_value() if key else None for key in keys] == ["shared", "own"]


def test_entries_behind_one_url_name_their_model_and_session_header(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "FRONTEND_ENDPOINTS",
        '[{"name": "8B", "base_url": "http://router/v1", "model": "qwen3-vl-8b", "session_header": "x-session-id"},'
        ' {"name": "4B", "base_url": "http://router/v1", "model": "", "session_header": ""}]',
    )
    eight, four = load_settings().endpoints
    assert (eight.model, eight.session_header) == ("qwen3-vl-8b", "x-session-id")
    assert eight.session_headers("chat-1") == {"x-session-id": "chat-1"}
    assert (four.model, four.session_header) == (None, None)  # blank = not set, as compose passes it
    assert four.session_headers("chat-1") == {}


def test_empty_api_key_means_none(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTEND_API_KEY", "")  # what compose passes for an unset VLLM_API_KEY
    assert load_settings().api_key is None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('[{"name": "8B", "base_url": ', "FRONTEND_ENDPOINTS is not valid JSON"),
        ('[{"name": "8B", "base_url": "http://vllm-8b:8000"}]', "FRONTEND_ENDPOINTS[0].base_url"),
        ('[{"name": "8B", "base_url": "ftp://vllm-8b/v1"}]', "ending in /v1"),
        ('[{"base_url": "http://vllm-8b:8000/v1"}]', "FRONTEND_ENDPOINTS[0].name"),
        ("[]", "FRONTEND_ENDPOINTS"),
        (
            '[{"name": "8B", "base_url": "http://router/v1", "session_header": "x session"}]',
            "FRONTEND_ENDPOINTS[0].session_header: Value error, 'x session' is not an HTTP header name",
        ),
    ],
)
def test_bad_endpoints_are_rejected_clearly(
    monkeypatch: pytest.MonkeyPatch, value: str, message: str
) -> None:
    monkeypatch.setenv("FRONTEND_ENDPOINTS", value)
    with pytest.raises(SettingsInvalid) as caught:
        load_settings()
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("FRONTEND_MAX_UPLOAD_MB", "0", "FRONTEND_MAX_UPLOAD_MB: Input should be greater than or equal to 1"),
        ("FRONTEND_IMAGE_TOKEN_BUDGET", "20000", "FRONTEND_IMAGE_TOKEN_BUDGET: Input should be less than"),
        ("FRONTEND_REQUEST_TIMEOUT_S", "soon", "FRONTEND_REQUEST_TIMEOUT_S: Input should be a valid number"),
        ("FRONTEND_MAX_TOKENS", "-5", "FRONTEND_MAX_TOKENS: Input should be greater than or equal to 1"),
        (
            "FRONTEND_ENDPOINTS",
            '[{"name": "8B", "base_url": "http://h:8000/v1", "image_limit": -1}]',
            "[0].image_limit",
        ),
    ],
)
def test_bad_page_settings_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsInvalid, match=re.escape(message)):
        load_settings()


def test_page_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("FRONTEND_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FRONTEND_IMAGE_TOKEN_BUDGET", "512")
    monkeypatch.setenv(
        "FRONTEND_ENDPOINTS", '[{"name": "8B", "base_url": "http://h:8000/v1", "image_limit": 2}]'
    )
    settings = load_settings()
    assert settings.database_path == tmp_path / "chats.sqlite3"
    assert settings.image_token_budget == 512
    assert settings.endpoints[0].image_limit == 2


def test_every_field_is_described() -> None:
    for model in (Endpoint, FrontendSettings):
        assert all(info.description for info in model.model_fields.values()), model


# ------------------------------------------------------------------------------------------------ the probe


def test_closed_port_is_not_started_quickly_with_how_to_start_it(closed_port_url: str) -> None:
    started = time.monotonic()
    endpoint = Endpoint(name="gone", base_url=closed_port_url, start_command="python -m serve up 8b")
    status = check_endpoint(endpoint)
    assert time.monotonic() - started < 3
    assert status.state is State.NOT_STARTED
    assert "nothing listens on 127.0.0.1:" in status.reason
    assert status.reason.endswith("start it with `python -m serve up 8b`")
    assert status.models == []


def test_closed_port_of_a_server_seen_ready_is_down(closed_port_url: str) -> None:
    status = check_endpoint(Endpoint(name="gone", base_url=closed_port_url), was_ready=True)
    assert status.state is State.DOWN
    assert "connection refused: it stopped" in status.reason


def test_the_page_remembers_which_servers_were_ready(closed_port_url: str) -> None:
    """Nothing listening means "not started" until the page saw the server ready; then it is "down"."""

    seen = ReadySeen()
    with standin_server(StandIn(model="qwen3-vl-4b", reply=lambda messages: "")) as base_url:
        endpoint = Endpoint(name="4B", base_url=base_url)
        [before] = check_endpoints([endpoint], seen=seen)
    [after] = check_endpoints([endpoint], seen=seen)
    [elsewhere] = check_endpoints([endpoint], seen=ReadySeen())
    assert (before.state, after.state, elsewhere.state) == (State.READY, State.DOWN, State.NOT_STARTED)


def test_unknown_host_is_not_started() -> None:
    status = check_endpoint(Endpoint(name="x", base_url="http://no-such-service.invalid:8000/v1"))
    assert status.state is State.NOT_STARTED
    assert "no host no-such-service.invalid (in compose: its service is not running)" in status.reason


def test_ready_server_reports_model_and_context(fake_vllm: FakeVllm) -> None:
    status = check_endpoint(Endpoint(name="4B", base_url=fake_vllm.base_url))
    assert status.state is State.READY
    assert [(m.id, m.max_model_len) for m in status.models] == [("qwen3-vl-4b", 32768)]
    assert status.reason == ""
    assert fake_vllm.seen_authorization == [None, None]


def test_an_entry_picks_its_model_from_a_url_that_serves_several(fake_vllm: FakeVllm) -> None:
    fake_vllm.model_id, fake_vllm.more_models = "qwen3-vl-8b", [("qwen3-vl-4b", 16384)]
    named = check_endpoint(Endpoint(name="4B", base_url=fake_vllm.base_url, model="qwen3-vl-4b"))
    assert named.state is State.READY
    assert (named.model.id, named.model.max_model_len) == ("qwen3-vl-4b", 16384)
    unnamed = check_endpoint(Endpoint(name="any", base_url=fake_vllm.base_url))
    assert unnamed.model.id == "qwen3-vl-8b"  # the first listed, as before


def test_an_entry_whose_model_is_not_listed_is_down_and_says_why(fake_vllm: FakeVllm) -> None:
    fake_vllm.model_id = "qwen3-vl-4b"  # behind a router: 8B's replicas are still loading
    status = check_endpoint(Endpoint(name="8B", base_url=fake_vllm.base_url, model="qwen3-vl-8b"))
    assert status.state is State.DOWN
    assert "does not list 'qwen3-vl-8b' (it lists qwen3-vl-4b)" in status.reason
    assert "FRONTEND_ENDPOINTS" in status.reason


def test_api_key_is_sent_as_bearer(fake_vllm: FakeVllm) -> None:
    check_endpoint(Endpoint(name="4B", base_url=fake_vllm.base_url), SecretStr("k1"))
    own = Endpoint(name="4B", base_url=fake_vllm.base_url, api_key=SecretStr("own"))
    check_endpoint(own, SecretStr("k1"))
    assert fake_vllm.seen_authorization == ["Bearer k1", "Bearer k1", "Bearer own", "Bearer own"]


def test_unhealthy_server_is_loading(fake_vllm: FakeVllm) -> None:
    fake_vllm.health_status = 503
    status = check_endpoint(Endpoint(name="4B", base_url=fake_vllm.base_url))
    assert status.state is State.LOADING
    assert "503" in status.reason


@pytest.mark.parametrize(
    ("health", "models", "reason"),
    [(200, 401, "FRONTEND_API_KEY"), (200, 500, "500"), (404, 200, "404")],
)
def test_unusable_answers_are_down(fake_vllm: FakeVllm, health: int, models: int, reason: str) -> None:
    fake_vllm.health_status, fake_vllm.models_status = health, models
    status = check_endpoint(Endpoint(name="4B", base_url=fake_vllm.base_url))
    assert status.state is State.DOWN
    assert reason in status.reason


def test_check_endpoints_keeps_order(fake_vllm: FakeVllm, closed_port_url: str) -> None:
    endpoints = [
        Endpoint(name="gone", base_url=closed_port_url),
        Endpoint(name="up", base_url=fake_vllm.base_url),
    ]
    assert [s.state for s in check_endpoints(endpoints)] == [State.NOT_STARTED, State.READY]


# ------------------------------------------------------------------------------------------------ real vLLM


@pytest.mark.vllm
def test_probe_against_real_vllm(tiny_server: Any) -> None:  # TinyServer, from tests/conftest.py
    """The probe parses what vLLM 0.32 really answers, and its key handling matches vLLM's auth."""
    endpoint = Endpoint(name="tiny", base_url=tiny_server.base_url)
    ready = check_endpoint(endpoint, SecretStr(tiny_server.api_key))
    assert ready.state is State.READY, ready.reason
    assert [(m.id, m.max_model_len) for m in ready.models] == [
        (tiny_server.served_name, tiny_server.max_model_len)
    ]
    without_key = check_endpoint(endpoint)  # /health is open, /v1/* needs the key
    assert without_key.state is State.DOWN
    assert "401" in without_key.reason
