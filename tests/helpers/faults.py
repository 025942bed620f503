"""Network faults in front of a real server: answers cut short or held mid-stream, servers that never answer."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Iterator


def _close(*socks: socket.socket) -> None:
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def _pump(
    source: socket.socket,
    sink: socket.socket,
    budget: int | None = None,
    *,
    hold: bool = False,
    step_bytes: int | None = None,
    step_s: float = 0.0,
) -> None:
    """Copy bytes until EOF, or until `budget` bytes went through; then cut both sockets, or with `hold`
    leave them open and silent (a server that stalls mid-answer). With `step_bytes`, pass that many bytes
    every `step_s` (a slow, steady stream)."""
    try:
        while data := source.recv(65536):
            step = step_bytes or len(data)
            for start in range(0, len(data), step):
                piece = data[start : start + step]
                if budget is not None:
                    piece = piece[:budget]
                    budget -= len(piece)
                sink.sendall(piece)
                if budget is not None and budget <= 0:
                    if hold:
                        return
                    _close(source, sink)
                    return
                if step_bytes:
                    time.sleep(step_s)
    except OSError:
        pass
    _close(source, sink)


@contextlib.contextmanager
def _proxy(handle: Callable[[socket.socket, list[socket.socket]], None]) -> Iterator[int]:
    """A listener on 127.0.0.1 handing each connection to `handle` in a thread. Yields its port; on exit
    every socket it opened is closed."""
    listener = socket.create_server(("127.0.0.1", 0))
    opened: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            opened.append(client)
            threading.Thread(target=handle, args=(client, opened), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        for sock in opened:
            sock.close()


def _forward(
    upstream_port: int,
    *,
    answer_budget: int | None,
    posts_only: bool,
    hold: bool,
    step_bytes: int | None = None,
    step_s: float = 0.0,
) -> Callable[[socket.socket, list[socket.socket]], None]:
    def handle(client: socket.socket, opened: list[socket.socket]) -> None:
        upstream = socket.create_connection(("127.0.0.1", upstream_port))
        opened.append(upstream)
        first = client.recv(65536)
        upstream.sendall(first)
        threading.Thread(target=_pump, args=(client, upstream), daemon=True).start()
        if posts_only and not first.startswith(b"POST"):
            _pump(upstream, client)
        else:
            _pump(upstream, client, answer_budget, hold=hold, step_bytes=step_bytes, step_s=step_s)

    return handle


def cutting_proxy(upstream_port: int, *, cut_after_bytes: int) -> contextlib.AbstractContextManager[int]:
    """A TCP proxy to 127.0.0.1:upstream_port that drops each connection once the server has sent
    `cut_after_bytes` bytes, like a server dying mid-answer. Yields the proxy's port."""
    return _proxy(_forward(upstream_port, answer_budget=cut_after_bytes, posts_only=False, hold=False))


def holding_proxy(upstream_port: int, *, hold_after_bytes: int) -> contextlib.AbstractContextManager[int]:
    """GET requests (health, models) pass; the answer to a POST stops after `hold_after_bytes` bytes and its
    connection stays open and silent until the client goes away: an answer still streaming whatever the
    model says and however fast. An answer that ends within those bytes passes whole. Yields the port."""
    return _proxy(_forward(upstream_port, answer_budget=hold_after_bytes, posts_only=True, hold=True))


def throttled_proxy(
    upstream_port: int, *, step_bytes: int, step_s: float, hold_after_bytes: int | None = None
) -> contextlib.AbstractContextManager[int]:
    """GET exchanges (health, model list) pass at full speed; the answer to a POST passes `step_bytes` every
    `step_s` (a slow, steady stream) and, with `hold_after_bytes`, stops after that many bytes while the
    connection stays open (a server that stalls mid-answer). Yields the port."""
    return _proxy(
        _forward(
            upstream_port,
            answer_budget=hold_after_bytes,
            posts_only=True,
            hold=True,
            step_bytes=step_bytes,
            step_s=step_s,
        )
    )


def stalling_proxy(upstream_port: int) -> contextlib.AbstractContextManager[int]:
    """GET requests pass; a POST (a chat completion) never gets a single byte back. Yields the port."""
    return holding_proxy(upstream_port, hold_after_bytes=0)


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """Accepts connections and reads requests but never answers: a hung server. Yields its port."""
    with _proxy(lambda client, opened: None) as port:
        yield port
