"""Which local processes serve a port: the listener and its children, or a vLLM that is still starting.

vLLM's GPU memory is held by its engine process, a child of the API server that listens on the port, so
the listener's descendants count too. Inside containers the listener on the host is Docker's proxy, not
vLLM: its tree holds no GPU memory, and no figure is better than a wrong one.
"""

from __future__ import annotations

import psutil

VLLM_MARKERS = ("vllm.entrypoints.openai.api_server", "vllm serve", "bin/vllm")


def listener_pids(port: int) -> set[int]:
    """The processes listening on `port` on this machine, with their descendants (vLLM's engine)."""
    try:
        connections = psutil.net_connections(kind="inet")
    except psutil.AccessDenied:
        return set()
    pids: set[int] = set()
    for connection in connections:
        listening = connection.status == psutil.CONN_LISTEN and connection.laddr
        if listening and connection.laddr.port == port and connection.pid is not None:
            pids |= process_tree(connection.pid)
    return pids


def process_tree(pid: int) -> set[int]:
    """The process and its descendants (those still alive)."""
    try:
        return {pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))}
    except psutil.Error:
        return set()


def starting_vllm(port: int) -> int | None:
    """The pid of a local vLLM started with --port PORT that does not listen yet (vLLM 0.32 opens its port
    only once the weights are loaded), else None."""
    for process in psutil.process_iter(["cmdline"]):
        cmdline = process.info.get("cmdline") or []
        text = " ".join(cmdline)
        if not any(marker in text for marker in VLLM_MARKERS):
            continue
        for i, arg in enumerate(cmdline):
            if (arg == "--port" and cmdline[i + 1 : i + 2] == [str(port)]) or arg == f"--port={port}":
                return process.pid
    return None
