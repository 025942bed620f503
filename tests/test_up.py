"""`serve up` against a real vLLM (tiny checkpoint on CPU): readiness, snippet, stop, failures, no orphans."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest
from PIL import Image

from harness.serve_up import ServeUp, free_port, processes_with_marker
from harness.tiny_checkpoint import harness_env, write_tiny_profile
from serve.config.profile import load_profile
from serve.launcher.failures import Failure, diagnose, error_lines
from serve.launcher.vllm_process import VLLM_MODULE, Phase, VllmProcess, vllm_command

pytestmark = pytest.mark.vllm
STARTUP_TIMEOUT_S = 300


def serve_up(
    tmp_path: Path, checkpoint: Path, *, extra: dict | None = None, env: dict | None = None
) -> ServeUp:
    port = free_port()
    profile = write_tiny_profile(tmp_path / "tiny.yaml", checkpoint=checkpoint, port=port, extra=extra)
    return ServeUp(
        args=[str(profile), "--log-file", str(tmp_path / "vllm.log")],
        env={**harness_env(cache_dir=tmp_path), **(env or {})},
        workdir=tmp_path,
    )


def test_ready_message_and_a_snippet_that_works(tiny_server, tmp_path: Path) -> None:
    out = tiny_server.serve_up.stdout_path.read_text()
    err = tiny_server.serve_up.stderr_path.read_text()
    assert f"tiny-qwen3-vl is ready at {tiny_server.base_url}" in out
    # The key was only in secrets.env of serve up's folder (tests/conftest.py): read, and said so.
    assert f"API key: required (VLLM_API_KEY from {tiny_server.key_file})" in out
    assert "[serve] tiny (tiny-qwen3-vl): loading weights" in err  # progress shown while loading
    assert "[serve] tiny (tiny-qwen3-vl): ready" in err
    assert tiny_server.api_key not in out + err, "the API key must never be printed"
    snippet = out.split("OpenAI SDK:\n", 1)[1].split("\nPress Ctrl+C", 1)[0]
    Image.new("RGB", (96, 64), "orange").save(tmp_path / "photo.jpg")
    result = subprocess.run(
        [sys.executable, "-c", snippet],
        cwd=tmp_path,
        env={**os.environ, "VLLM_API_KEY": tiny_server.api_key},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr


def test_secrets_from_the_file_reach_vllm_and_no_other_process(tiny_server) -> None:
    serve_up_pid = tiny_server.serve_up.process.pid
    vllm_pids = [pid for pid in processes_with_marker(tiny_server.serve_up.marker) if pid != serve_up_pid]
    assert vllm_pids
    for pid in vllm_pids:
        assert f"HF_TOKEN={tiny_server.hf_token}".encode() in Path(f"/proc/{pid}/environ").read_bytes()
    # serve up itself was started without them: they came from the file, for vLLM only.
    assert b"HF_TOKEN=\x00" in Path(f"/proc/{serve_up_pid}/environ").read_bytes()


def test_the_vllm_command_binds_loopback_and_puts_overrides_after_the_config(tmp_path: Path) -> None:
    path = tmp_path / "8b.yaml"
    path.write_text((Path(__file__).resolve().parents[1] / "profiles" / "8b.yaml").read_text())
    profile = load_profile(path, {"SERVE_8B_MAX_MODEL_LEN": "8192"})
    command = vllm_command(profile, "127.0.0.1", 8000, ["--max-num-seqs", "8"])
    assert command[:3] == [sys.executable, "-m", VLLM_MODULE]
    assert command[3:] == [
        "--config", str(path), "--host", "127.0.0.1", "--port", "8000",
        "--max-model-len", "8192", "--max-num-seqs", "8",
    ]  # fmt: skip


def test_override_applies_on_ipv6_loopback_and_ctrl_c_stops_everything(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    """--host ::1 needs brackets in every URL serve up builds (its readiness probe, the ready message)."""
    server = serve_up(tmp_path, tiny_checkpoint, env={"SERVE_TINY_MAX_MODEL_LEN": "1024"})
    server.args += ["--host", "::1"]
    server.start()
    try:
        server.wait_ready(STARTUP_TIMEOUT_S)
        port = int(re.search(r"is ready at http://\[::1\]:(\d+)/v1", server.output()).group(1))
        models = httpx.get(f"http://[::1]:{port}/v1/models", timeout=10).json()["data"]
        assert models[0]["max_model_len"] == 1024  # SERVE_TINY_MAX_MODEL_LEN beat the profile's 2048
        assert len(server.leftovers()) >= 3  # serve up, the API server, the engine core
        assert server.stop(signal.SIGINT) == 0
        assert "SIGINT: stopping vLLM" in server.output()
        assert server.leftovers() == []
    finally:
        server.kill_everything()


def test_vllm_dying_after_ready_makes_serve_up_exit_nonzero(tmp_path: Path, tiny_checkpoint: Path) -> None:
    server = serve_up(tmp_path, tiny_checkpoint).start()
    try:
        server.wait_ready(STARTUP_TIMEOUT_S)
        (api_server,) = psutil.Process(server.process.pid).children()
        api_server.kill()
        assert server.wait_exit(60) == 1
        assert "vLLM exited unexpectedly after it was ready (code -9)" in server.output()
        assert server.leftovers() == []
    finally:
        server.kill_everything()


def test_profile_option_vllm_rejects(tmp_path: Path, tiny_checkpoint: Path) -> None:
    server = serve_up(tmp_path, tiny_checkpoint, extra={"no-such-option": 3}).start()
    try:
        assert server.wait_exit(STARTUP_TIMEOUT_S) == 1
        output = server.output()
        assert "vLLM exited during start-up" in output
        assert "--no-such-option" in output  # vLLM's own error line, shown
        assert "vLLM rejected an option of the profile" in output and "tiny.yaml" in output
        assert server.leftovers() == []
    finally:
        server.kill_everything()


def test_kv_cache_too_small_explains_what_to_change(tmp_path: Path, tiny_checkpoint: Path) -> None:
    # 2048 tokens x 1 KiB per token need 2 MiB; give vLLM 1 MiB.
    server = serve_up(tmp_path, tiny_checkpoint, extra={"kv-cache-memory-bytes": "1M"}).start()
    try:
        assert server.wait_exit(STARTUP_TIMEOUT_S) == 1
        output = server.output()
        assert "larger than the available KV cache memory" in output
        assert "what to change:" in output and "SERVE_TINY_MAX_MODEL_LEN" in output
        assert "python -m serve plan tiny" in output
        assert server.leftovers() == []
    finally:
        server.kill_everything()


def test_port_in_use_fails_fast_without_starting_vllm(tmp_path: Path, tiny_checkpoint: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = serve_up(tmp_path, tiny_checkpoint)
        server.args += ["--port", str(port)]
        server.start()
        assert server.wait_exit(60) == 1
    assert f"port {port} on 127.0.0.1 is in use" in server.output()
    assert "warning" not in server.output()  # loopback needs no key
    assert not (tmp_path / "vllm.log").exists()


def test_binding_beyond_loopback_without_a_key_warns(tmp_path: Path, tiny_checkpoint: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = serve_up(tmp_path, tiny_checkpoint, env={"VLLM_API_KEY": ""})
        server.args += ["--host", "0.0.0.0", "--port", str(port)]
        server.start()
        assert server.wait_exit(60) == 1  # the port is taken: nothing starts, but the warning came first
    assert "warning: binding 0.0.0.0 without an API key" in server.output()


def test_a_key_written_in_dotenv_counts_for_the_warning(tmp_path: Path, tiny_checkpoint: Path) -> None:
    (tmp_path / ".env").write_text("VLLM_API_KEY=from-dotenv\n")
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        server = serve_up(tmp_path, tiny_checkpoint, env={"VLLM_API_KEY": ""})
        server.args += ["--host", "0.0.0.0", "--port", str(taken.getsockname()[1])]
        server.start()
        assert server.wait_exit(60) == 1
    assert "is in use" in server.output() and "without an API key" not in server.output()


def test_unknown_profile_and_invalid_profile_never_start_vllm(tmp_path: Path) -> None:
    unknown = subprocess.run(
        [sys.executable, "-m", "serve", "up", "9b"], capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={**os.environ, "SERVE_PROFILES_DIR": str(Path(__file__).resolve().parents[1] / "profiles")},
    )  # fmt: skip
    assert unknown.returncode == 2 and "unknown profile '9b'" in unknown.stderr and "8b-fp8" in unknown.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: x\nserved-model-name: x\nport: 8000\ngpu-memory-utilization: 2\nmax-model-len: 1\n"
                   "limit-mm-per-prompt: {image: 1, video: 0}\n")  # fmt: skip
    invalid = subprocess.run(
        [sys.executable, "-m", "serve", "up", str(bad)], capture_output=True, text=True, timeout=60
    )
    assert invalid.returncode == 2
    assert "bad.yaml: gpu-memory-utilization: 2.0 is outside (0, 1]" in invalid.stderr


def test_known_failures_are_recognised_in_vllm_log_lines() -> None:
    lines = [
        "(APIServer pid=1) WARNING 11-28 11:31:49 [system_utils.py:255] Found ulimit of 20000 and failed to "
        "automatically increase with error current limit exceeds maximum limit.\n",
        "ValueError: Free memory on device cuda:0 (30.1/79.2 GiB) on startup is less than desired GPU memory "
        "utilization (0.55, 43.6 GiB).\n",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n",
    ]
    assert [k.failure for k in diagnose(lines)] == [Failure.GPU_MEMORY_TAKEN, Failure.CUDA_OOM]
    assert error_lines(lines)[0].startswith("ValueError: Free memory")
    assert error_lines(["just a tail\n"]) == ["just a tail"]
    offline = [
        "huggingface_hub.errors.LocalEntryNotFoundError: An error happened while trying to locate the file"
    ]
    assert [k.failure for k in diagnose(offline)] == [Failure.HUB_UNREACHABLE]


def test_every_start_up_phase_is_recorded_even_when_it_lasts_milliseconds(tmp_path: Path) -> None:
    """The phases come from vLLM's log lines; a fake child prints the real wording (vLLM 0.32) at once."""
    lines = [
        "(EngineCore pid=1) INFO [gpu_model_runner.py:10] Starting to load model /models/tiny...",
        "(EngineCore pid=1) INFO [default_loader.py:20] Loading weights took 0.02 seconds",
        "(EngineCore pid=1) INFO [kv_cache_utils.py:2327] CPU KV cache size: 65,536 tokens",
        "(APIServer pid=1) INFO [api_server.py:30] Starting vLLM server on http://127.0.0.1:8000",
    ]
    proc = VllmProcess([sys.executable, "-c", f"print({chr(10).join(lines)!r})"], tmp_path / "log.txt")
    proc.start()
    proc.wait_for_output()
    assert proc.phases_seen() == [
        Phase.STARTING,
        Phase.LOADING_WEIGHTS,
        Phase.WEIGHTS_LOADED,
        Phase.KV_CACHE,
        Phase.HTTP_SERVER,
    ]
    assert (tmp_path / "log.txt").read_text().splitlines() == lines
    assert proc.stop() == 0
