"""The compose entrypoint of the gateway (docker/gateway-entrypoint.sh runs it inside vllm/vllm-openai): front
the model services that run, then exec `serve gateway` attached to them (the image's Python, the mounted
package).

Which models run is chosen with compose profiles, which a container cannot see. But Compose starts the gateway
after the model containers it depends on (`required: false` drops one whose profile is off), and a service
that is not running has no host name on the compose network. So each `PROFILE=URL` of SERVE_GATEWAY_UPSTREAMS
whose host resolves is fronted, the others are left out (and said so).

Standard library only, like serve.launcher.container: it runs with the image's Python.

Environment:
  SERVE_GATEWAY_UPSTREAMS   space-separated PROFILE=URL (docker-compose.yml: the two model services)
  SERVE_GATEWAY_MAX_AWAKE   --max-awake; empty = what the placement allows on the GPUs the gateway sees
  SERVE_GATEWAY_PORT        the port it listens on in the container (default 8000, the published one)
Arguments (compose `command:`) are passed to `serve gateway` after these.
"""

from __future__ import annotations

import os
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from urllib.parse import urlsplit

DEFAULT_PORT = "8000"
USAGE_ERROR = 64  # EX_USAGE, as the vLLM entrypoint
NOTHING_TO_FRONT = 1


class GatewayEntrypointError(Exception):
    """A configuration mistake, or no model service running; the message says what to do."""


def _say(line: str) -> None:
    print(f"gateway-entrypoint: {line}", file=sys.stderr, flush=True)


def resolves(host: str) -> bool:
    """The host has an address (compose: its service's container runs)."""
    try:
        socket.getaddrinfo(host, None)
    except OSError:
        return False
    return True


def upstreams(text: str) -> list[tuple[str, str]]:
    """`8b=http://vllm-8b:8000/v1 4b=...` -> [(profile, url), ...]; raises on a malformed entry."""
    pairs = []
    for entry in text.split():
        profile, sep, url = entry.partition("=")
        parts = urlsplit(url)
        if not sep or not profile or parts.scheme not in ("http", "https") or not parts.hostname:
            raise GatewayEntrypointError(
                f"SERVE_GATEWAY_UPSTREAMS entry {entry!r} is not PROFILE=URL, e.g. 8b=http://vllm-8b:8000/v1"
            )
        pairs.append((profile, url))
    if not pairs:
        raise GatewayEntrypointError(
            "SERVE_GATEWAY_UPSTREAMS is empty: list PROFILE=URL of each model service"
        )
    return pairs


def gateway_args(
    environ: Mapping[str, str], extra: Sequence[str] = (), resolve: Callable[[str], bool] = resolves
) -> tuple[list[str], list[str]]:
    """(the `serve gateway` arguments, the profiles left out because their service is not running)."""
    fronted, left_out = [], []
    for profile, url in upstreams(environ.get("SERVE_GATEWAY_UPSTREAMS", "")):
        (fronted if resolve(urlsplit(url).hostname or "") else left_out).append((profile, url))
    if not fronted:
        raise GatewayEntrypointError(
            "no model service is running ("
            + ", ".join(url for _, url in left_out)
            + " do not resolve): start "
            "one with `docker compose --profile 8b up -d` or `--profile 4b`"
        )
    args = ["gateway", *(profile for profile, _ in fronted), "--host", "0.0.0.0"]
    args += ["--port", environ.get("SERVE_GATEWAY_PORT", "").strip() or DEFAULT_PORT, "--swap", "sleep"]
    for profile, url in fronted:
        args += ["--upstream", f"{profile}={url}"]
    if max_awake := environ.get("SERVE_GATEWAY_MAX_AWAKE", "").strip():
        args += ["--max-awake", max_awake]
    return [*args, *extra], [profile for profile, _ in left_out]


def main(args: Sequence[str] | None = None, serve_root: str | None = None) -> int:
    try:
        argv, left_out = gateway_args(os.environ, sys.argv[1:] if args is None else args)
    except GatewayEntrypointError as exc:
        _say(str(exc))
        return USAGE_ERROR if "SERVE_GATEWAY_UPSTREAMS" in str(exc) else NOTHING_TO_FRONT
    for profile in left_out:
        _say(
            f"{profile}: its service is not running, so it is not fronted (restart the gateway after starting it)"
        )
    _say("serve " + " ".join(argv))
    environ = dict(os.environ)
    if serve_root:  # the mounted package, importable in the exec'd process
        environ["PYTHONPATH"] = os.pathsep.join(filter(None, [serve_root, environ.get("PYTHONPATH")]))
    command = [sys.executable, "-c", "import sys; from serve.cli import main; sys.exit(main(sys.argv[1:]))"]
    os.execvpe(sys.executable, [*command, *argv], environ)
    return 0  # not reached: exec replaces this process
