"""The login gate: Streamlit's native OIDC login when `[auth]` is configured, a shared password when
FRONTEND_PASSWORD is set, and no page at all beyond loopback with neither (unless FRONTEND_ALLOW_NO_LOGIN)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping

import streamlit as st

from frontend.access import (
    REMEMBER_S,
    LoginMethod,
    is_loopback,
    login_methods,
    open_access_refused,
    password_matches,
    remember_token,
    token_valid,
)
from frontend.markdown import plain_text
from frontend.settings import FrontendSettings
from frontend.store import SHARED

logger = logging.getLogger(__name__)

COOKIE = "qwen3_vl_chat_login"
FAILED_ATTEMPT_DELAY_S = 1.0  # slows down guessing; the page tells nothing else about a wrong password
PASSWORD_KEY = "login-password"


def require_login(settings: FrontendSettings) -> str:
    """The owner of this session's chats; draws the login screen and stops the run while nobody is logged in."""
    auth = _auth_section()
    methods = login_methods(oidc_configured=bool(auth), password=settings.password)
    if not methods:
        address = settings.bind_address or st.get_option("server.address")
        if not is_loopback(address) and not settings.allow_no_login:
            st.error(open_access_refused(address), icon="🔒")
            st.stop()
        return SHARED
    if LoginMethod.OIDC in methods and (user := _oidc_user()):
        return f"oidc:{user}"
    if settings.password is not None and _password_login(settings):
        return SHARED
    _login_screen(methods, auth, settings)
    st.stop()
    raise AssertionError("unreachable")  # st.stop() raises


def account(owner: str) -> None:
    """Who is logged in, and the way out (nothing when the page is open)."""
    if owner.startswith("oidc:"):
        st.caption(f"Logged in as {plain_text(owner.removeprefix('oidc:'))}")
        st.button("Log out", icon=":material/logout:", key="logout", on_click=st.logout)
    elif st.session_state.get("password-login"):
        st.button("Log out", icon=":material/logout:", key="logout", on_click=_log_out)


def _auth_section() -> Mapping | None:
    try:
        section = st.secrets.get("auth")
    except FileNotFoundError:  # no secrets.toml: no OIDC
        return None
    return section if isinstance(section, Mapping) and section else None


def _oidc_user() -> str | None:
    if not st.user.get("is_logged_in"):
        return None
    return st.user.get("email") or st.user.get("sub") or None


def _password_login(settings: FrontendSettings) -> bool:
    assert settings.password is not None
    if st.session_state.get("password-login"):
        if token := st.session_state.pop("remember-token", None):
            _set_cookie(token, REMEMBER_S)
        return True
    if not st.session_state.get("logged-out") and token_valid(
        st.context.cookies.get(COOKIE), settings.password
    ):
        st.session_state["password-login"] = True
        return True
    return False


def _check_password(settings: FrontendSettings) -> None:
    assert settings.password is not None
    given = st.session_state.pop(PASSWORD_KEY, "")
    if password_matches(given, settings.password):
        st.session_state.pop("logged-out", None)
        st.session_state["password-login"] = True
        st.session_state["remember-token"] = remember_token(settings.password)
        return
    logger.warning("A wrong password was given for the chat page")
    time.sleep(FAILED_ATTEMPT_DELAY_S)
    st.session_state["login-problem"] = "That is not the password. Try again, or ask whoever runs this page."


def _log_out() -> None:
    st.session_state.pop("password-login", None)
    st.session_state["logged-out"] = True


def _login_screen(methods: list[LoginMethod], auth: Mapping | None, settings: FrontendSettings) -> None:
    if st.session_state.get("logged-out"):  # until the next login, this session ignores the cookie
        _set_cookie("", 0)
    st.title("Qwen3-VL chat", anchor=False)
    if LoginMethod.OIDC in methods and auth is not None:
        providers = [name for name, value in auth.items() if isinstance(value, Mapping)]
        for provider in providers or [None]:
            st.button(
                f"Log in with {provider}" if provider else "Log in",
                icon=":material/login:",
                key=f"login-{provider or 'default'}",
                type="primary",
                on_click=st.login,
                args=(provider,) if provider else (),
            )
    if LoginMethod.PASSWORD in methods:
        with st.form("login", border=True, clear_on_submit=True):
            st.text_input("Password", type="password", key=PASSWORD_KEY, autocomplete="current-password")
            st.form_submit_button("Open the page", type="primary", on_click=_check_password, args=(settings,))
    if problem := st.session_state.pop("login-problem", None):
        st.error(problem, icon="🔒")


def _set_cookie(value: str, max_age_s: int) -> None:
    """The browser keeps the login token (a reload opens a new session, which reads it from the cookie)."""
    secure = "; Secure" if (st.context.url or "").startswith("https:") else ""
    cookie = f"{COOKIE}={value}; Max-Age={max_age_s}; Path=/; SameSite=Strict{secure}"
    st.html(f"<script>document.cookie = {json.dumps(cookie)};</script>", unsafe_allow_javascript=True)
