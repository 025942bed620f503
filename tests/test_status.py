"""`serve status` against the real tiny vLLM (up), a free port (down), a server whose /health answers 503 and
a vLLM process that has not opened its port yet (loading). There is no GPU here: nvidia-smi is a script on
PATH that prints output in the format captured from a real one (`--query-compute-apps=pid,process_name,
used_memory --format=csv,noheader,nounits`), with the pids of the real vLLM processes."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from harness.serve_up import free_port, processes_with_marker
from serve.cli import main

pytestmark = pytest.mark.vllm

ENGINE_MIB = 1536


def fake_nvidia_smi(folder: Path, lines: list[str]) -> Path:
    folder.mkdir(exist_ok=True)
    script = folder / "nvidia-smi"
    body = "".join(f"echo '{line}'\n" for line in lines)
    script.write_text(f"#!/bin/sh\n# A stand-in for nvidia-smi: its output format, this test's pids.\n{body}")
    script.chmod(0o755)
    return folder


def status(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict]]:
    code = main(["status", "--json", *argv])
    return code, json.loads(capsys.readouterr().out)


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder without .env or secrets.env, no key and no nvidia-smi unless a test adds them."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("VLLM_API_KEY", raising=False)
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    return tmp_path


def test_the_slot_of_a_running_server_is_up_with_its_model_context_and_gpu_memory(
    tiny_server, isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    vllm_pids = [
        pid
        for pid in processes_with_marker(tiny_server.serve_up.marker)
        if pid != tiny_server.serve_up.process.pid
    ]
    lines = [f"{pid}, VLLM::EngineCore, {ENGINE_MIB}" for pid in vllm_pids]
    lines.append("1, [Not Found], 40000")  # another process's memory must not be counted
    monkeypatch.setenv("PATH", f"{fake_nvidia_smi(isolated / 'bin', lines)}:/usr/bin:/bin")
    (isolated / "secrets.env").write_text(f"VLLM_API_KEY={tiny_server.api_key}\n")
    code, (report,) = status(capsys, "--profiles-dir", str(tiny_server.profile_path.parent))
    assert code == 0
    assert report["name"] == "tiny" and report["state"] == "up"
    assert report["url"] == tiny_server.base_url
    assert report["models"][0]["id"] == tiny_server.served_name
    assert report["models"][0]["max_model_len"] == tiny_server.max_model_len
    assert report["profile"] == "tiny"
    assert report["gpu_memory_mib"] == ENGINE_MIB * len(vllm_pids)


def test_without_the_key_it_is_up_and_says_the_key_is_needed(
    tiny_server, isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, (report,) = status(capsys, "--endpoint", f"tiny={tiny_server.base_url}")
    assert (code, report["state"], report["models"]) == (0, "up", [])
    assert "needs the API key: set VLLM_API_KEY" in report["detail"]


class _Unhealthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(503)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def unhealthy_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Unhealthy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def starting_vllm() -> Iterator[int]:
    """A process with the command line of `serve up`'s vLLM that never opens its port (as vLLM does while it
    loads weights); the real one takes ~35 s to get there, which this test does not need."""
    port = free_port()
    sleeper = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; time.sleep(60)",
            "vllm.entrypoints.openai.api_server",
            "--port",
            str(port),
        ]
    )
    try:
        yield port
    finally:
        sleeper.kill()
        sleeper.wait()


def test_down_loading_and_unhealthy_endpoints_each_say_why(
    tiny_server,
    isolated: Path,
    unhealthy_server: str,
    starting_vllm: int,
    capsys: pytest.CaptureFixture[str],
) -> None:
    (isolated / ".env").write_text(f"VLLM_API_KEY={tiny_server.api_key}\n")
    nobody = free_port()
    argv = [
        "status",
        "--endpoint", f"tiny={tiny_server.base_url}",
        "--endpoint", f"nobody=http://127.0.0.1:{nobody}/v1",
        "--endpoint", f"unhealthy={unhealthy_server}",
        "--endpoint", f"starting=http://127.0.0.1:{starting_vllm}/v1",
    ]  # fmt: skip
    code, reports = status(capsys, *argv[1:])
    assert code == 1  # not every endpoint is up
    states = {report["name"]: (report["state"], report["detail"]) for report in reports}
    assert states["tiny"] == ("up", "")
    assert states["nobody"] == ("down", f"nothing listens on 127.0.0.1:{nobody}")
    assert states["unhealthy"][0] == "loading" and "/health answered 503" in states["unhealthy"][1]
    assert states["starting"][0] == "loading" and "is starting" in states["starting"][1]
    assert main(argv) == 1
    text = capsys.readouterr().out
    assert "GPU memory not shown: no nvidia-smi on this machine" in text
    for word in ("up", "down", "loading", tiny_server.served_name, "2,048"):
        assert word in text


def test_the_default_slots_say_how_to_start_a_model_that_is_not_running(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The shipped profiles' slots (8000, 8001) on a machine where no model runs on them: down, with the
    command that starts each. (Skipped where another process on this shared machine holds those ports.)"""
    from serve.status.processes import listener_pids

    if listener_pids(8000) or listener_pids(8001):
        pytest.skip("ports 8000/8001 are in use on this machine")
    code, reports = status(capsys)
    assert code == 1
    by_slot = {report["name"]: report for report in reports}
    assert set(by_slot) == {"8b", "4b"}
    assert by_slot["4b"]["url"] == "http://127.0.0.1:8001/v1"
    assert "start it: python -m serve up 4b, or docker compose --profile 4b up" in by_slot["4b"]["detail"]
