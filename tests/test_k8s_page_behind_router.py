"""The page behind one URL (issue 16, item 3): two real tiny vLLMs behind a model-routing proxy that stands in
for production-stack's router (tests/helpers/model_router.py says why), driven through Streamlit's AppTest.

Each endpoint entry names its `model`, so both entries share the router's URL and still reach their own
model; with `session_header` every request carries the chat's id, which is what the router's session
routing (`serve k8s` writes routingLogic: session) hashes to keep a chat on one replica.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from frontend.endpoint_status import check_endpoint
from frontend.settings import Endpoint
from serve.k8s.values import SESSION_HEADER
from tests.conftest import TinyServer
from tests.helpers.model_router import ModelRouter, model_router
from tests.helpers.page import saved, send, start_page, stats_lines

pytestmark = pytest.mark.vllm


@pytest.fixture(scope="module")
def router(tiny_server: TinyServer, second_tiny_server: TinyServer) -> Iterator[ModelRouter]:
    backends = [(server.base_url, server.api_key) for server in (tiny_server, second_tiny_server)]
    with model_router(backends) as running:
        yield running


def entry(name: str, router: ModelRouter, server: TinyServer, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "base_url": router.base_url,
        "api_key": server.api_key,
        "image_limit": server.image_limit,
        **extra,
    }


def test_one_url_lists_both_models_and_each_entry_gets_its_own(
    router: ModelRouter, tiny_server: TinyServer, second_tiny_server: TinyServer
) -> None:
    first = check_endpoint(Endpoint(name="A", base_url=router.base_url))
    assert [m.id for m in first.models] == [tiny_server.served_name, second_tiny_server.served_name]
    assert first.model.id == tiny_server.served_name  # no `model`: the first listed, which is the bug fixed
    second = Endpoint(name="B", base_url=router.base_url, model=second_tiny_server.served_name)
    assert check_endpoint(second).model.id == second_tiny_server.served_name


def test_the_page_asks_each_model_through_one_url_with_the_session_key(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    router: ModelRouter,
    tiny_server: TinyServer,
    second_tiny_server: TinyServer,
) -> None:
    router.requests.clear()
    session = {"session_header": SESSION_HEADER}
    page = start_page(
        monkeypatch,
        tmp_path,
        [
            entry("Tiny A", router, tiny_server, model=tiny_server.served_name, **session),
            entry("Tiny B", router, second_tiny_server, model=second_tiny_server.served_name, **session),
        ],
    )
    assert page.radio[0].options == ["Tiny A", "Tiny B"]
    captions = " ".join(caption.value for caption in page.sidebar.caption)
    assert "is down" not in captions
    send(page, "First question")
    page.radio[0].set_value("Tiny B").run()
    send(page, "Second question")
    page.toggle[0].set_value(True).run()
    send(page, "Both of you, please")

    first, second, both = (stats_lines(message) for message in page.chat_message[1::2])
    a, b = (f"`{server.served_name}`" for server in (tiny_server, second_tiny_server))
    assert a in first[0]
    assert b in second[0]
    assert a in both[0] and b in both[1]
    routes = {server.served_name: server.base_url for server in (tiny_server, second_tiny_server)}
    chats = [r for r in router.requests if r.path == "/v1/chat/completions"]
    assert [r.model for r in chats[:2]] == [tiny_server.served_name, second_tiny_server.served_name]
    assert sorted(r.model or "" for r in chats[2:]) == sorted(routes)  # compare mode: both, in parallel
    assert all(r.backend == routes[r.model or ""] for r in chats)
    chat_id = saved(tmp_path, page).id
    assert [r.headers.get(SESSION_HEADER) for r in chats] == [chat_id] * 4
