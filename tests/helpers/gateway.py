"""Run `python -m serve gateway` as a child process the way a user does, in front of tiny vLLMs it starts
itself, and look at it from outside: its HTTP API, its output, the vLLM processes and sockets behind it."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

from harness.serve_up import free_port, kill_marked, leftovers_with_marker, processes_with_marker
from harness.tiny_checkpoint import harness_env, write_tiny_profile

SOCKETS_LINE = re.compile(r"instances on Unix sockets in (\S+) ")


@dataclass
class GatewayProcess:
    args: list[str]
    workdir: Path
    env: dict[str, str]
    port: int = field(default_factory=free_port)
    marker: str = field(default_factory=lambda: uuid.uuid4().hex)
    process: subprocess.Popen[bytes] | None = None

    @property
    def root_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def start(self) -> GatewayProcess:
        env = {**os.environ, **self.env, "SERVE_TEST_MARKER": self.marker}
        with (
            (self.workdir / "gateway.stdout").open("wb") as out,
            (self.workdir / "gateway.stderr").open("wb") as err,
        ):
            self.process = subprocess.Popen(
                [sys.executable, "-m", "serve", "gateway", *self.args, "--port", str(self.port)],
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.workdir,
            )
        return self

    def output(self) -> str:
        return (self.workdir / "gateway.stdout").read_text(errors="replace") + (
            self.workdir / "gateway.stderr"
        ).read_text(errors="replace")

    def log(self) -> str:
        return (self.workdir / "gateway.stderr").read_text(errors="replace")

    def states(self) -> dict[str, str]:
        return httpx.get(f"{self.root_url}/health", timeout=5).json()["models"]

    def wait_states(self, wanted: dict[str, str], timeout: float) -> None:
        """Until /health shows every model in `wanted` in its state; raises with the output otherwise."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        seen: dict[str, str] = {}
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"serve gateway exited with {self.process.returncode}:\n{self.output()[-6000:]}"
                )
            with contextlib.suppress(httpx.HTTPError):
                seen = self.states()
                if all(seen.get(model) == state for model, state in wanted.items()):
                    return
            time.sleep(0.2)
        raise TimeoutError(f"states {seen}, wanted {wanted} after {timeout} s:\n{self.output()[-6000:]}")

    def socket_dir(self) -> Path:
        found = SOCKETS_LINE.search(self.output())
        assert found, self.output()
        return Path(found.group(1))

    def instance_client(self, profile: str) -> httpx.Client:
        """Straight to an instance's Unix socket (as this user may): vLLM's own /metrics and /is_sleeping."""
        socket = self.socket_dir() / f"{profile}.sock"
        return httpx.Client(
            transport=httpx.HTTPTransport(uds=str(socket)), base_url="http://vllm.local", timeout=10
        )

    def vllm_pid(self, profile: str) -> int:
        """The vLLM API server serving `profile` (its command line names the profile file)."""
        for pid in processes_with_marker(self.marker):
            with contextlib.suppress(psutil.Error):
                cmd = psutil.Process(pid).cmdline()
                if "vllm.entrypoints.openai.api_server" in cmd and any(
                    a.endswith(f"/{profile}.yaml") for a in cmd
                ):
                    return pid
        raise LookupError(f"no vLLM process for {profile}")

    def tcp_listeners(self) -> list[tuple[int, int]]:
        """(pid, port) of every TCP socket listening among the gateway and what it started."""
        found = []
        for pid in processes_with_marker(self.marker):
            with contextlib.suppress(psutil.Error):
                for conn in psutil.Process(pid).net_connections(kind="tcp"):
                    if conn.status == psutil.CONN_LISTEN:
                        found.append((pid, conn.laddr.port))
        return found

    def stop(self, timeout: float = 90) -> int:
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def leftovers(self) -> list[int]:
        return leftovers_with_marker(self.marker)

    def kill_everything(self) -> None:
        kill_marked(self.marker)


def write_profiles(
    run_dir: Path, checkpoint: Path, served_names: dict[str, str], broken: frozenset[str] = frozenset()
) -> list[Path]:
    """A tiny profile per entry (profile name -> served name); those in `broken` name a checkpoint that does
    not exist (an instance that fails to start)."""
    paths = []
    for profile, served in served_names.items():
        model = run_dir / "no-such-checkpoint" if profile in broken else checkpoint
        extra = {"served-model-name": served}
        paths.append(write_tiny_profile(run_dir / f"{profile}.yaml", checkpoint=model, port=1, extra=extra))
    return paths


@contextlib.contextmanager
def running_gateway(
    run_dir: Path, profiles: list[Path], args: list[str], api_key: str, env: dict[str, str] | None = None
) -> Iterator[GatewayProcess]:
    """The gateway with its key in secrets.env (where users write it); stopped with SIGTERM, and the exit
    fails the test if it did not exit 0 or left processes behind."""
    (run_dir / "secrets.env").write_text(f"VLLM_API_KEY={api_key}\n")
    (run_dir / "secrets.env").chmod(0o600)
    environment = {**harness_env(cache_dir=run_dir), "VLLM_API_KEY": "", **(env or {})}
    gateway = GatewayProcess([*map(str, profiles), *args], run_dir, environment).start()
    try:
        yield gateway
        code = gateway.stop()
        leftovers = gateway.leftovers()
        assert code == 0, f"serve gateway exited with {code} on SIGTERM:\n{gateway.output()[-3000:]}"
        assert not leftovers, f"serve gateway left processes behind: {leftovers}"
    finally:
        gateway.kill_everything()
