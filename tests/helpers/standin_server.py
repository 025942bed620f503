"""A scripted stand-in for a vLLM server: /health, /v1/models and streaming /v1/chat/completions that answer
with a text chosen by the test (not a model), token by token, with a usage report at the end.

For what the tiny random model cannot give: a plausible answer for the README's screenshot, and answers
written to attack the page (remote images, HTML) in the security tests. Also `recording_server`: an HTTP
server that records every request it gets (the listener that must receive nothing).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from tests.helpers.http_server import serving

Reply = Callable[[list[dict[str, Any]]], str]  # the request's messages -> the answer's text


@dataclass
class StandIn:
    """What the stand-in serves; `requests` collects the chat requests it got (their JSON bodies)."""

    model: str
    reply: Reply
    token_delay_s: float = 0.02
    max_model_len: int = 32768
    root: str = "Qwen/Qwen3-VL-8B-Instruct"
    requests: list[dict[str, Any]] = field(default_factory=list)


def _tokens(text: str) -> list[str]:
    """Word-sized pieces, spaces kept, as a tokenizer would stream them."""
    return re.findall(r"\s*\S+|\s+", text)


def _prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """A plausible count: ~4 characters per text token, 1280 per image (the profiles' cap) at most."""
    count = 0
    for message in messages:
        content = message.get("content")
        parts = content if isinstance(content, list) else [{"type": "text", "text": content or ""}]
        for part in parts:
            count += 80 if part.get("type") == "image_url" else len(part.get("text", "")) // 4 + 1
    return count + 4 * len(messages)


class _Handler(BaseHTTPRequestHandler):
    standin: StandIn  # set on the subclass per server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _json(self, body: dict[str, Any], status: int = 200) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        if self.path == "/health":
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif self.path == "/v1/models":
            model = {
                "id": self.standin.model,
                "object": "model",
                "owned_by": "vllm",
                "root": self.standin.root,
                "max_model_len": self.standin.max_model_len,
            }
            self._json({"object": "list", "data": [model]})
        else:
            self._json({"error": {"message": "not found"}}, 404)

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        if self.path != "/v1/chat/completions" or not body.get("stream"):
            self._json({"error": {"message": "the stand-in only streams chat completions"}}, 400)
            return
        self.standin.requests.append(body)
        pieces = _tokens(self.standin.reply(body["messages"]))[: body.get("max_tokens") or None]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        base = {"id": "chatcmpl-standin", "object": "chat.completion.chunk", "created": int(time.time())}

        def send(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> None:
            chunk = {**base, "model": self.standin.model, "choices": choices, "usage": usage}
            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
            self.wfile.flush()

        try:
            send([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])
            for piece in pieces:
                time.sleep(self.standin.token_delay_s)
                send([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
            send([{"index": 0, "delta": {}, "finish_reason": "stop"}])
            prompt = _prompt_tokens(body["messages"])
            usage = {
                "prompt_tokens": prompt,
                "completion_tokens": len(pieces),
                "total_tokens": prompt + len(pieces),
            }
            send([], usage)
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):  # the client stopped the answer
            pass
        self.close_connection = True


@contextmanager
def standin_server(standin: StandIn) -> Iterator[str]:
    """Serve `standin` on 127.0.0.1; yields its OpenAI base URL (…/v1)."""
    handler = type("StandInHandler", (_Handler,), {"standin": standin})
    with serving(handler) as port:
        yield f"http://127.0.0.1:{port}/v1"


@contextmanager
def recording_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server that answers 200 to anything and records each request line. Yields (its root URL,
    the list of request lines it got)."""
    received: list[str] = []

    class Recorder(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _answer(self) -> None:
            received.append(self.requestline)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "0")
            self.end_headers()

        do_GET = do_POST = do_HEAD = do_OPTIONS = _answer

    with serving(Recorder) as port:
        yield f"http://127.0.0.1:{port}", received
