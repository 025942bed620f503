"""Who may use the page: the login methods configured, whether the page is reachable beyond this machine, the
shared password's check and the token that remembers it in the browser. No Streamlit here.

The password is compared in constant time, never logged and never stored: the browser keeps a token (an
HMAC of its expiry, keyed by the password), which a password change invalidates.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import time
from enum import StrEnum

from pydantic import SecretStr

LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
REMEMBER_S = 7 * 24 * 3600
_TOKEN_CONTEXT = b"qwen3-vl-chat login token v1\0"


class LoginMethod(StrEnum):
    OIDC = "oidc"  # Streamlit's st.login: users are known, each has their own chats
    PASSWORD = "password"  # one shared password: one shared set of chats


def login_methods(*, oidc_configured: bool, password: SecretStr | None) -> list[LoginMethod]:
    """The methods to offer, OIDC first; [] = the page is open."""
    return [
        method
        for method, configured in (
            (LoginMethod.OIDC, oidc_configured),
            (LoginMethod.PASSWORD, password is not None),
        )
        if configured
    ]


def is_loopback(address: str | None) -> bool:
    """True for an address only this machine reaches; None or "" (every interface) and names are not."""
    host = (address or "").strip().strip("[]")
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_access_refused(address: str | None) -> str:
    """What the page says instead of opening, beyond loopback without a login."""
    where = f"on {address}" if address else "on every network interface"
    return (
        f"This page is published {where}, beyond this machine, and has no login: anyone who reaches it could "
        "use the models and read every saved chat, so it does not open. Set FRONTEND_PASSWORD (a shared "
        "password), or configure OIDC login in .streamlit/secrets.toml ([auth], see the README); or, if "
        "something in front of it authenticates already, set FRONTEND_ALLOW_NO_LOGIN=true. To keep it on this "
        "machine, bind it to 127.0.0.1 (BIND_ADDRESS)."
    )


def password_matches(given: str, password: SecretStr) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), password.get_secret_value().encode("utf-8"))


def remember_token(password: SecretStr, *, now: float | None = None) -> str:
    """'<expiry>.<hmac>': proves the password was given, until the expiry, without containing it."""
    expiry = int((now if now is not None else time.time()) + REMEMBER_S)
    return f"{expiry}.{_signature(password, expiry)}"


def token_valid(token: object, password: SecretStr, *, now: float | None = None) -> bool:
    if not isinstance(token, str):
        return False
    expiry, _, signature = token.partition(".")
    if not expiry.isdigit() or int(expiry) < (now if now is not None else time.time()):
        return False
    return hmac.compare_digest(signature, _signature(password, int(expiry)))


def _signature(password: SecretStr, expiry: int) -> str:
    key = hashlib.sha256(_TOKEN_CONTEXT + password.get_secret_value().encode("utf-8")).digest()
    return hmac.new(key, str(expiry).encode(), hashlib.sha256).hexdigest()
