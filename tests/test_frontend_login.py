"""Who may open the page: nobody beyond loopback without a login (unless told explicitly), a shared password for a
small team (remembered by the browser across reloads), OIDC users (st.login) each with their own chats.

AppTest for the gate and OIDC (AppTest.user is Streamlit's own way to seed st.user: no OIDC provider runs
here), Chromium for the password's cookie. A stand-in server is the endpoint: no model is needed to log in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect
from pydantic import SecretStr
from streamlit.testing.v1 import AppTest

from frontend.access import password_matches, remember_token, token_valid
from tests.helpers.browser import WAIT_MS, idle, sidebar, start_chat_page
from tests.helpers.page import saved, send, start_page
from tests.helpers.standin_server import StandIn, standin_server
from tests.helpers.streamlit_app import StreamlitApp

PASSWORD = "correct horse battery staple"
PASSWORD_FIELD = "input[type=password]"
OIDC = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "a-long-random-cookie-secret-for-the-test",
        "client_id": "qwen3-vl-chat",
        "client_secret": "client-secret",
        "server_metadata_url": "https://login.example.invalid/.well-known/openid-configuration",
    }
}
Page_ = Callable[..., AppTest]


@pytest.fixture(scope="module")
def standin_url() -> Iterator[str]:
    with standin_server(StandIn(model="qwen3-vl-4b", reply=lambda messages: "Hello there.")) as url:
        yield url


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def open_page(monkeypatch: pytest.MonkeyPatch, data_dir: Path, standin_url: str) -> Page_:
    def start(
        *, user: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None, **variables: str
    ) -> AppTest:
        endpoint = {"name": "Qwen3-VL-4B", "base_url": standin_url}
        return start_page(
            monkeypatch, data_dir, [endpoint], user=user, secrets=secrets, timeout_s=60, **variables
        )

    return start


def test_beyond_loopback_without_a_login_the_page_does_not_open(open_page: Page_) -> None:
    page = open_page(FRONTEND_BIND_ADDRESS="0.0.0.0")
    assert "beyond this machine, and has no login" in page.error[0].value
    assert "FRONTEND_PASSWORD" in page.error[0].value and "FRONTEND_ALLOW_NO_LOGIN" in page.error[0].value
    assert not page.chat_input and not page.sidebar.button


def test_an_explicit_opt_in_opens_it_without_a_login(open_page: Page_) -> None:
    page = open_page(FRONTEND_BIND_ADDRESS="0.0.0.0", FRONTEND_ALLOW_NO_LOGIN="true")
    assert page.chat_input and not page.error


def test_the_shared_password_opens_the_page(
    open_page: Page_, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    page = open_page(FRONTEND_BIND_ADDRESS="0.0.0.0", FRONTEND_PASSWORD=PASSWORD)
    assert not page.chat_input
    page.text_input(key="login-password").set_value("wrong guess")
    page.button[0].click().run()
    assert "not the password" in page.error[0].value
    assert not page.chat_input

    page.text_input(key="login-password").set_value(PASSWORD)
    page.button[0].click().run()
    assert not page.exception and page.chat_input
    send(page, "Hi")
    assert saved(data_dir, page).messages[1].answers[0].content == "Hello there."
    stored = b"".join(path.read_bytes() for path in data_dir.iterdir())
    assert (
        PASSWORD.encode() not in stored and "wrong guess" not in caplog.text and PASSWORD not in caplog.text
    )


def test_oidc_users_see_only_their_own_chats(open_page: Page_, data_dir: Path) -> None:
    alice = {"is_logged_in": True, "email": "alice@example.com", "sub": "a-1"}
    page = send(open_page(user=alice, secrets=OIDC), "Alice's question")
    alices_chat = page.query_params["chat"]
    assert "Logged in as alice@example.com" in page.sidebar.caption[0].value

    bob = open_page(user={"is_logged_in": True, "email": "bob@example.com", "sub": "b-1"}, secrets=OIDC)
    assert not [button for button in bob.sidebar.button if button.key == f"open-{alices_chat}"]
    bob_by_url = open_page(
        user={"is_logged_in": True, "email": "bob@example.com"}, secrets=OIDC, query={"chat": alices_chat}
    )
    assert not bob_by_url.chat_message  # the URL of someone else's chat opens a new one
    assert bob_by_url.query_params.get("chat") != alices_chat

    again = open_page(user=alice, secrets=OIDC)
    assert [button.key for button in again.sidebar.button if button.key == f"open-{alices_chat}"]


def test_without_an_oidc_login_the_page_offers_to_log_in(open_page: Page_) -> None:
    page = open_page(user={"is_logged_in": False}, secrets=OIDC)
    assert [button.label for button in page.button] == ["Log in"]
    assert not page.chat_input


def test_the_remember_token_proves_the_password_until_it_expires() -> None:
    secret = SecretStr(PASSWORD)
    token = remember_token(secret, now=1000.0)
    assert PASSWORD not in token
    assert token_valid(token, secret, now=2000.0)
    assert not token_valid(token, SecretStr("another password"), now=2000.0)
    assert not token_valid(token, secret, now=1000.0 + 8 * 24 * 3600)
    assert not token_valid("9999999999.forged", secret) and not token_valid(None, secret)
    assert password_matches(PASSWORD, secret) and not password_matches(PASSWORD[:-1], secret)


@pytest.fixture(scope="module")
def password_app(standin_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamlitApp]:
    app = start_chat_page(
        tmp_path_factory.mktemp("password-page"),
        [{"name": "Qwen3-VL-4B", "base_url": standin_url}],
        FRONTEND_PASSWORD=PASSWORD,
        FRONTEND_BIND_ADDRESS="0.0.0.0",
    )
    try:
        yield app
    finally:
        app.stop()


def test_the_browser_remembers_the_password_across_reloads_until_logout(
    page: Page, password_app: StreamlitApp
) -> None:
    page.goto(password_app.url)
    idle(page)
    page.locator(PASSWORD_FIELD).fill(PASSWORD)
    page.get_by_role("button", name="Open the page").click()
    expect(page.get_by_test_id("stChatInput")).to_be_visible(timeout=WAIT_MS)
    idle(page)

    page.reload()
    idle(page)
    expect(page.get_by_test_id("stChatInput")).to_be_visible(timeout=WAIT_MS)
    assert PASSWORD not in str(page.context.cookies())

    sidebar(page).get_by_role("button", name="Log out").click()
    expect(page.locator(PASSWORD_FIELD)).to_be_visible(timeout=WAIT_MS)
    idle(page)
    page.reload()
    idle(page)
    expect(page.locator(PASSWORD_FIELD)).to_be_visible(timeout=WAIT_MS)
    expect(page.get_by_test_id("stChatInput")).to_have_count(0)
