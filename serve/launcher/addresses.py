"""Bind addresses as URLs: an IPv6 literal needs brackets, and a wildcard address is reached via loopback."""

from __future__ import annotations

import ipaddress

LOCALHOST = "localhost"
# Listening on every interface includes loopback, which is the address to probe from this machine.
_WILDCARD_TO_LOOPBACK = {"0.0.0.0": "127.0.0.1", "::": "::1"}


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or localhost: reachable from this machine only."""
    ip = _ip(host)
    return host == LOCALHOST if ip is None else ip.is_loopback


def is_ipv6(host: str) -> bool:
    return isinstance(_ip(host), ipaddress.IPv6Address)


def url_host(host: str) -> str:
    """The host as it goes into a URL: `::1` -> `[::1]` (RFC 3986), names and IPv4 unchanged."""
    return f"[{host.strip('[]')}]" if is_ipv6(host) else host


def http_root(bind_host: str, port: int) -> str:
    """The server root (no path) to reach a server listening on bind_host:port from this machine."""
    host = _WILDCARD_TO_LOOPBACK.get(bind_host.strip("[]"), bind_host)
    return f"http://{url_host(host)}:{port}"
