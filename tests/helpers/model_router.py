"""One URL in front of several real vLLM servers, routing by model like vLLM production-stack's router.

The router itself (src/vllm_router in vllm-project/production-stack) is code from another repository and no
package registry reachable here ships it, so the tests stand this in for it, doing what the page relies on:
`/v1/models` merges the backends' lists (first per id; asked with the router's own key per backend, as the
router uses its VLLM_API_KEY), a request goes to the backend that lists its `model` (404 otherwise, as the
router answers), the client's headers (Authorization, the session key) are forwarded, and the headers of
every request are recorded for the test to check.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import httpx

from tests.helpers.http_server import serving

# Hop-by-hop and framing headers are the proxy's own business.
_NOT_FORWARDED = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


@dataclass
class RoutedRequest:
    """One POST: its path, the body's `model`, the base URL it went to (None: no backend lists the model)
    and its headers, names lower-cased."""

    path: str
    model: str | None
    backend: str | None
    headers: dict[str, str]


@dataclass
class ModelRouter:
    base_url: str
    requests: list[RoutedRequest] = field(default_factory=list)


def _models(client: httpx.Client, backend: str, key: str | None) -> list[dict[str, Any]]:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    try:
        response = client.get(f"{backend}/models", headers=headers)
        return response.json()["data"] if response.status_code == 200 else []
    except (httpx.HTTPError, ValueError, KeyError):
        return []


@contextlib.contextmanager
def model_router(backends: Sequence[tuple[str, str | None]]) -> Iterator[ModelRouter]:
    """Serve on 127.0.0.1 (a free port) until the block ends; `backends` are (OpenAI base URL …/v1, its key)."""
    client = httpx.Client(timeout=httpx.Timeout(120.0, connect=5.0))
    state = ModelRouter(base_url="")

    class Handler(BaseHTTPRequestHandler):
        def _forwarded(self) -> dict[str, str]:
            return {k: v for k, v in self.headers.items() if k.lower() not in _NOT_FORWARDED}

        def _answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/health":
                self._answer(200, b'{"status": "healthy"}')
            elif self.path == "/v1/models":
                cards: dict[str, dict[str, Any]] = {}
                for backend, key in backends:
                    for card in _models(client, backend, key):
                        cards.setdefault(card["id"], card)
                self._answer(200, json.dumps({"object": "list", "data": list(cards.values())}).encode())
            else:
                self._answer(404, b'{"detail": "Not Found"}')

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            model = json.loads(body or b"{}").get("model")
            headers = self._forwarded()
            backend = next(
                (
                    url
                    for url, key in backends
                    if any(card["id"] == model for card in _models(client, url, key))
                ),
                None,
            )
            state.requests.append(
                RoutedRequest(self.path, model, backend, {k.lower(): v for k, v in headers.items()})
            )
            if backend is None:
                self._answer(404, json.dumps({"error": f"Model {model} not found"}).encode())
                return
            upstream = f"{backend.removesuffix('/v1')}{self.path}"
            with client.stream("POST", upstream, content=body, headers=headers) as response:
                # HTTP/1.0 without a length: the body (an event stream) ends when the connection closes.
                self.send_response(response.status_code)
                self.send_header("Content-Type", response.headers.get("content-type", "application/json"))
                self.end_headers()
                with contextlib.suppress(OSError):  # the client went away (the page's Stop button)
                    for chunk in response.iter_raw():
                        self.wfile.write(chunk)
                        self.wfile.flush()

        def log_message(self, *args: object) -> None:
            pass

    try:
        with serving(Handler) as port:
            state.base_url = f"http://127.0.0.1:{port}/v1"
            yield state
    finally:
        client.close()
