"""Network faults in front of a real server: a proxy that cuts answers short, a server that never answers."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator


def _pump(source: socket.socket, sink: socket.socket, budget: list[int] | None) -> None:
    """Copy bytes until EOF, or until `budget[0]` bytes went through (then cut both sockets)."""
    try:
        while data := source.recv(65536):
            if budget is not None:
                data = data[: budget[0]]
                budget[0] -= len(data)
            sink.sendall(data)
            if budget is not None and budget[0] <= 0:
                break
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


@contextlib.contextmanager
def cutting_proxy(upstream_port: int, *, cut_after_bytes: int) -> Iterator[int]:
    """A TCP proxy to 127.0.0.1:upstream_port that drops each connection once the server has sent
    `cut_after_bytes` bytes, like a server dying mid-answer. Yields the proxy's port."""
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", upstream_port))
            threading.Thread(target=_pump, args=(client, upstream, None), daemon=True).start()
            threading.Thread(target=_pump, args=(upstream, client, [cut_after_bytes]), daemon=True).start()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1]
    finally:
        stop.set()
        listener.close()


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """Accepts connections and reads requests but never answers: a hung server. Yields its port."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            held.append(client)

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        for client in held:
            client.close()


@contextlib.contextmanager
def stalling_proxy(upstream_port: int) -> Iterator[int]:
    """A TCP proxy that passes GET requests (health checks, model lists) but swallows every POST, so the
    server looks healthy while a chat completion never gets an answer. Yields the proxy's port."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []

    def handle(client: socket.socket) -> None:
        first = client.recv(65536)
        if first.startswith(b"POST"):
            held.append(client)  # keep it open and silent
            return
        upstream = socket.create_connection(("127.0.0.1", upstream_port))
        upstream.sendall(first)
        threading.Thread(target=_pump, args=(client, upstream, None), daemon=True).start()
        _pump(upstream, client, None)

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(client,), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()
        for client in held:
            client.close()
