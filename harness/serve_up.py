"""Run `python -m serve up` as a child process the way a user does, and watch what it prints."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

READY_MARKER = " is ready at "
REPO_ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def processes_with_marker(marker: str) -> list[int]:
    """Pids whose environment carries `marker`: every process `serve up` started inherits it."""
    found = []
    needle = f"SERVE_TEST_MARKER={marker}".encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if needle in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except (OSError, PermissionError):
            continue
    return found


def leftovers_with_marker(marker: str, wait_s: float = 5.0) -> list[int]:
    """Pids carrying `marker` still alive after waiting up to `wait_s` for them to go."""
    deadline = time.monotonic() + wait_s
    while (alive := processes_with_marker(marker)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


def kill_marked(marker: str) -> None:
    """SIGKILL every process carrying `marker` (teardown's last resort)."""
    for pid in processes_with_marker(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


@dataclass
class ServeUp:
    """One `serve up` child; stdout and stderr go to files so a test can read them at any time."""

    args: list[str]
    env: dict[str, str]
    workdir: Path
    marker: str = field(default_factory=lambda: uuid.uuid4().hex)
    process: subprocess.Popen[bytes] | None = None

    @property
    def stdout_path(self) -> Path:
        return self.workdir / "serve-up.stdout"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / "serve-up.stderr"

    def start(self) -> ServeUp:
        self.workdir.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env, "SERVE_TEST_MARKER": self.marker}
        with self.stdout_path.open("wb") as out, self.stderr_path.open("wb") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "serve", "up", *self.args],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.workdir,
            )
        return self

    def output(self) -> str:
        return self.stdout_path.read_text(errors="replace") + self.stderr_path.read_text(errors="replace")

    def wait_ready(self, timeout: float) -> float:
        """Seconds until `serve up` said it is ready; raises with its output if it exited or timed out."""
        assert self.process is not None
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if READY_MARKER in self.stdout_path.read_text(errors="replace"):
                return time.monotonic() - started
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"serve up exited with {self.process.returncode}:\n{self.output()[-6000:]}"
                )
            time.sleep(0.2)
        raise TimeoutError(f"serve up not ready after {timeout} s:\n{self.output()[-6000:]}")

    def wait_exit(self, timeout: float) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self, sig: signal.Signals = signal.SIGTERM, timeout: float = 60) -> int:
        """Signal `serve up` (not its children: it must stop them itself) and wait for it."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill_everything()
            raise

    def leftovers(self) -> list[int]:
        """Processes started by this `serve up` that are still alive (waits briefly for them to go)."""
        return leftovers_with_marker(self.marker)

    def kill_everything(self) -> None:
        """Last resort in teardown, so a broken test never leaves a server behind."""
        kill_marked(self.marker)
