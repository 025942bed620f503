"""Security end to end: the API key on both vLLM servers and in the page, secrets kept out of logs, exports,
the database and the page, no server-side fetching of image URLs, and the page's Streamlit defaults.

What is deliberately open: vLLM's /health and /metrics (and, in vLLM 0.32, a few more routes, /invocations
among them: see test_vllm_leaves_invocations_open_so_the_ports_must_stay_on_loopback). The defaults bind
every port to 127.0.0.1 (tests/test_compose_file.py checks the compose side, tests/test_up.py `serve up`).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import threading
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from playwright.sync_api import expect, sync_playwright
from streamlit.testing.v1 import AppTest

from frontend.chat_request import build_request
from frontend.conversation import GenerationSettings, Message
from frontend.export import export_json, export_markdown
from frontend.images import prepare_image
from frontend.store import ConversationStore
from harness.serve_up import REPO_ROOT, ServeUp, free_port
from harness.tiny_checkpoint import harness_env, write_tiny_profile
from tests.conftest import TinyServer
from tests.helpers.images import image_bytes, image_message, local_png_server, text_message
from tests.helpers.page import start_page
from tests.helpers.streamlit_app import StreamlitApp, launch_chromium, wait_for_app_idle

pytestmark = pytest.mark.vllm

STREAMLIT_CONFIG = REPO_ROOT / "frontend" / ".streamlit" / "config.toml"
COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"
WAIT_S = 120
STATS = '[class*="st-key-answer-stats"]'
Page = Callable[..., AppTest]


@pytest.fixture(params=["tiny_server", "second_tiny_server"])
def server(request: pytest.FixtureRequest) -> TinyServer:
    """Each of the two servers the page talks to."""
    return request.getfixturevalue(request.param)


def chat_body(server: TinyServer) -> dict[str, Any]:
    return {"model": server.served_name, "messages": [text_message("Hi.")], "max_tokens": 2}


# ----------------------------------------------------------------------------------------- the API key


def test_v1_requests_without_the_key_get_401(server: TinyServer) -> None:
    with httpx.Client(timeout=60) as client:
        for headers in ({}, {"Authorization": "Bearer wrong-key"}, {"Authorization": server.api_key}):
            assert client.get(f"{server.base_url}/models", headers=headers).status_code == 401
            response = client.post(
                f"{server.base_url}/chat/completions", json=chat_body(server), headers=headers
            )
            assert response.status_code == 401
            assert response.json() == {"error": "Unauthorized"}
        good = {"Authorization": f"Bearer {server.api_key}"}
        assert client.get(f"{server.base_url}/models", headers=good).status_code == 200
        assert client.post(
            f"{server.base_url}/chat/completions", json=chat_body(server), headers=good
        ).is_success


def test_health_and_metrics_stay_open(server: TinyServer) -> None:
    """Container healthchecks and Prometheus scrape these without a key. They tell whether the server is up
    and how busy it is, never what anyone asked; acceptable while the ports are bound to 127.0.0.1."""
    assert httpx.get(f"{server.root_url}/health", timeout=30).status_code == 200
    metrics = httpx.get(f"{server.root_url}/metrics", timeout=30)
    assert metrics.status_code == 200 and "vllm:prompt_tokens_total" in metrics.text
    assert server.api_key not in metrics.text


def test_vllm_leaves_invocations_open_so_the_ports_must_stay_on_loopback(server: TinyServer) -> None:
    """vLLM 0.32's key guards only /v1, /v2, /inference and /cohere (vllm/entrypoints/serve/middleware/
    authenticate.py). SageMaker's /invocations answers chat completions without it, and there is no option
    to turn it off: the key alone does not keep people off the model; binding to loopback (or a private
    network, or a proxy that forwards only /v1 and /health) does. If this starts failing, vLLM closed the gap
    and the README's Security section can say so."""
    response = httpx.post(f"{server.root_url}/invocations", json=chat_body(server), timeout=60)
    assert response.status_code == 200
    assert response.json()["object"] == "chat.completion"
    assert response.json()["model"] == server.served_name


# --------------------------------------------------------------------------------------- the page's key


@pytest.fixture
def open_page(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Page:
    def start(endpoints: list[dict[str, Any]], **variables: str) -> AppTest:
        variables = {"FRONTEND_MAX_TOKENS": "8", **variables}
        return start_page(monkeypatch, tmp_path / "data", endpoints, timeout_s=WAIT_S, **variables)

    return start


def endpoint(name: str, server: TinyServer) -> dict[str, Any]:
    """Without an `api_key` of its own: the page uses FRONTEND_API_KEY."""
    return {"name": name, "base_url": server.base_url, "image_limit": server.image_limit}


def rendered(page: AppTest) -> str:
    """Every element the page drew, main area and sidebar, as protobuf text."""
    texts = []

    def walk(node: Any) -> None:
        if (proto := getattr(node, "proto", None)) is not None:
            texts.append(str(proto))
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(page._tree)
    return "\n".join(texts)


def test_the_page_works_with_the_key_and_keeps_it_out_of_everything_it_writes(
    open_page: Page, tmp_path: Path, server: TinyServer
) -> None:
    page = open_page([endpoint("Keyed", server)], FRONTEND_API_KEY=server.api_key)
    assert page.radio[0].options == ["Keyed"]
    page.chat_input[0].upload("photo.png", image_bytes(160, 120), "image/png")
    page.chat_input[0].set_value("What is this?").run()
    assert not page.exception
    stats = [c.value for c in page.chat_message[1].caption if "first token" in c.value]
    assert stats and f"`{server.served_name}`" in stats[0]
    page.chat_input[0].set_value("word " * 3000).run()  # an error path too: a prompt over the context
    assert "no longer fits" in page.chat_message[3].error[0].value

    key = server.api_key
    assert key not in rendered(page)
    conversation = ConversationStore(tmp_path / "data" / "chats.sqlite3").load(page.query_params["chat"])
    assert conversation is not None and len(conversation.messages) == 4
    assert key.encode() not in export_json(conversation) and key not in export_markdown(conversation)
    for file in (tmp_path / "data").iterdir():  # chats.sqlite3 and its WAL
        assert key.encode() not in file.read_bytes(), file.name


def test_without_the_key_the_page_says_what_to_set(open_page: Page, server: TinyServer) -> None:
    for variables in ({}, {"FRONTEND_API_KEY": "wrong-key"}):
        page = open_page([endpoint("Keyed", server)], **variables)
        captions = [caption.value for caption in page.sidebar.caption]
        assert any("/v1/models answered 401: set FRONTEND_API_KEY" in caption for caption in captions), (
            captions
        )
        assert page.chat_input[0].disabled
        assert "No model is ready" in page.sidebar.error[0].value


def test_the_api_key_is_not_in_serve_up_output_or_the_vllm_log(server: TinyServer) -> None:
    assert server.vllm_log.stat().st_size > 0
    assert server.api_key not in server.serve_up.output()
    assert server.api_key not in server.vllm_log.read_text(errors="replace")


def test_a_real_streamlit_process_keeps_the_key_out_of_its_output_and_enforces_xsrf(
    tiny_server: TinyServer, tmp_path: Path
) -> None:
    env = {
        "FRONTEND_ENDPOINTS": json.dumps([endpoint("Keyed", tiny_server)]),
        "FRONTEND_API_KEY": tiny_server.api_key,
        "FRONTEND_DATA_DIR": str(tmp_path / "data"),
        "FRONTEND_MAX_TOKENS": "8",
    }
    with StreamlitApp(env=env, workdir=tmp_path / "streamlit") as app, sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(WAIT_S * 1000)
            page.goto(app.url)
            wait_for_app_idle(page, WAIT_S * 1000)
            page.get_by_test_id("stChatInputTextArea").fill("Hello over the wire.")
            page.get_by_test_id("stChatInputSubmitButton").click()
            messages = page.get_by_test_id("stChatMessage")
            expect(messages.last.locator(STATS)).to_contain_text(
                tiny_server.served_name, timeout=WAIT_S * 1000
            )
            wait_for_app_idle(page, WAIT_S * 1000)
            html = page.content()
        finally:
            browser.close()
        # An upload without the XSRF cookie and header is refused before anything else is looked at.
        upload = httpx.put(f"{app.url}/_stcore/upload_file/some-session/some-file", content=b"x", timeout=30)
        assert upload.status_code == 403 and "XSRF" in upload.text
    assert "Hello over the wire." in html
    assert tiny_server.api_key not in html
    output = app.output()
    assert output.strip(), "the Streamlit process wrote nothing: nothing was checked"
    assert tiny_server.api_key not in output


# ------------------------------------------------------------------------------------------------ SSRF


@pytest.fixture(scope="module")
def client(tiny_server: TinyServer) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=tiny_server.base_url, api_key=tiny_server.api_key, max_retries=0, timeout=60
    )


@pytest.mark.parametrize(
    "spelling",
    [
        "http://localhost:{port}/image.png",
        "http://LOCALHOST:{port}/image.png",
        "http://[::ffff:127.0.0.1]:{port}/image.png",
        "http://127.1:{port}/image.png",
        "http://none.invalid@127.0.0.1:{port}/image.png",
        "http://127.0.0.1:{port}/image.png?host=none.invalid",
        "https://127.0.0.1:{port}/image.png",
    ],
)
def test_no_spelling_of_a_local_url_is_fetched(
    client: openai.OpenAI, tiny_server: TinyServer, spelling: str
) -> None:
    """tests/test_openai_api.py shows a plain http://127.0.0.1 URL refused; other spellings of it too."""
    with local_png_server() as local:
        port = local.url.rsplit(":", 1)[1].split("/", 1)[0]
        url = spelling.format(port=port)
        with pytest.raises(openai.BadRequestError) as error:
            client.chat.completions.create(
                model=tiny_server.served_name, messages=[image_message("Describe it.", url)], max_tokens=2
            )
        assert "The URL must be from one of the allowed domains: ['none.invalid']" in str(error.value)
        assert local.requested_paths == [], f"vLLM fetched {url}"


def test_file_urls_are_refused(tiny_server: TinyServer, tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(image_bytes(64, 64))
    for url in (secret.as_uri(), "file:///etc/passwd"):
        body = {**chat_body(tiny_server), "messages": [image_message("Describe it.", url)]}
        # One connection per request: after this 500, vLLM 0.32 drops the keep-alive connection without a
        # `Connection: close`, and the next request sent on it is reset.
        response = httpx.post(
            f"{tiny_server.base_url}/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {tiny_server.api_key}"},
            timeout=60,
        )
        # A 500 rather than a 4xx on vLLM 0.32, but nothing is read: there is no --allowed-local-media-path.
        assert response.status_code == 500
        assert "Cannot load local files without `--allowed-local-media-path`" in response.text
        assert "root:" not in response.text  # /etc/passwd's first line
    assert httpx.get(f"{tiny_server.root_url}/health", timeout=10).status_code == 200


def test_the_page_sends_images_only_as_data_urls() -> None:
    history = []
    for turn, size in enumerate(((320, 200), (64, 64), (900, 600))):
        picture = prepare_image(image_bytes(*size), f"p{turn}.png", token_budget=256)
        history += [
            Message(role="user", text=f"turn {turn}", images=[picture]),
            Message(role="assistant"),
        ]
    request = build_request(history[:-1], GenerationSettings(), endpoint="E", image_limit=2)
    urls = [
        part["image_url"]["url"]
        for message in request.messages
        if isinstance(message["content"], list)
        for part in message["content"]
        if part["type"] == "image_url"
    ]
    assert len(urls) == 2 and request.images_left_out == 1
    assert all(url.startswith(("data:image/jpeg;base64,", "data:image/png;base64,")) for url in urls)
    assert "://" not in json.dumps(request.messages)  # no URL of any other kind, anywhere


# ------------------------------------------------------------------------- redirects, for allowlist users


@dataclass
class Redirector:
    url: str
    requested_paths: list[str] = field(default_factory=list)


@contextlib.contextmanager
def redirecting_server(target: str) -> Iterator[Redirector]:
    """Answers every GET on 127.0.0.1 with a 302 to `target`."""
    requested: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requested.append(self.path)
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Redirector(f"http://localhost:{server.server_address[1]}/photo.png", requested)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


# vLLM follows redirects of media URLs by default and checks allowed-media-domains only on the first URL:
# compose and `serve up` turn redirects off, so an allowlist a user opts into cannot be a way around it.


def test_compose_turns_media_redirects_off() -> None:
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    for name in ("vllm-8b", "vllm-4b"):
        environment = services[name].get("environment", {})
        assert str(environment.get("VLLM_MEDIA_URL_ALLOW_REDIRECTS")) == "0", name


def test_with_an_opted_in_allowlist_redirects_are_not_followed(tmp_path: Path, tiny_checkpoint: Path) -> None:
    port = free_port()
    profile = write_tiny_profile(
        tmp_path / "allowlist.yaml",
        checkpoint=tiny_checkpoint,
        port=port,
        extra={"allowed-media-domains": ["localhost"]},
    )
    server = ServeUp(
        args=[str(profile), "--log-file", str(tmp_path / "vllm.log")],
        env=harness_env(cache_dir=tmp_path),
        workdir=tmp_path,
    ).start()
    try:
        server.wait_ready(300)
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/v1", api_key="none", max_retries=0, timeout=60
        )

        def ask(url: str) -> Any:
            return client.chat.completions.create(
                model="tiny-qwen3-vl", messages=[image_message("Describe it.", url)], max_tokens=2
            )

        with local_png_server() as internal:  # on 127.0.0.1: not in the allowlist
            internal_port = internal.url.rsplit(":", 1)[1].split("/", 1)[0]
            assert ask(f"http://localhost:{internal_port}/image.png").usage  # the allowlist itself works
            internal.requested_paths.clear()
            with redirecting_server(internal.url) as redirector:
                with contextlib.suppress(openai.APIStatusError):
                    ask(redirector.url)
                assert redirector.requested_paths == ["/photo.png"]  # the allowed URL was fetched...
            assert internal.requested_paths == [], "...and vLLM followed its redirect to 127.0.0.1"
    finally:
        server.stop()
        server.kill_everything()


# ------------------------------------------------------------------------------------ Streamlit defaults


def test_streamlit_config_keeps_xsrf_on_and_binds_loopback() -> None:
    config = tomllib.loads(STREAMLIT_CONFIG.read_text())
    assert config["server"]["enableXsrfProtection"] is True
    assert config["server"]["address"] == "127.0.0.1"
    assert config["browser"]["gatherUsageStats"] is False


def test_the_page_passes_its_upload_cap_to_the_chat_input(open_page: Page) -> None:
    page = open_page(
        [{"name": "Gone", "base_url": f"http://127.0.0.1:{free_port()}/v1"}],
        FRONTEND_MAX_UPLOAD_MB="7",
        FRONTEND_MAX_VIDEO_MB="9",
    )
    # The widget has one cap: the larger (videos'); each type's own cap is checked when it is prepared.
    assert page.chat_input[0].proto.max_upload_size_mb == 9
    images = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp"}
    # Streamlit adds aliases of its own (.mpeg4 for .mp4).
    assert set(page.chat_input[0].proto.file_type) >= images | {".mp4", ".webm", ".mov", ".m4v", ".mkv"}


def test_the_streamlit_server_itself_caps_uploads() -> None:
    config = tomllib.loads(STREAMLIT_CONFIG.read_text())
    frontend_env = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["frontend"].get("environment", {})
    capped = "maxUploadSize" in config.get("server", {}) or "STREAMLIT_SERVER_MAX_UPLOAD_SIZE" in frontend_env
    assert capped
