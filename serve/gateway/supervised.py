"""A vLLM the gateway starts and supervises itself (bare metal), reusing `serve up`'s launcher.

Each instance listens on a Unix socket in a private 0700 folder (vLLM's --uds), never on TCP, and requires a
random key of its own: no other local user can reach it, dev routes (/sleep, /collective_rpc) included.
The key goes in the environment (VLLM_API_KEY), not the command line that `ps` shows.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import Mapping
from pathlib import Path

import httpx

from serve.config.profile import Profile
from serve.gateway.config import ModelSpec
from serve.gateway.instances import UPSTREAM_LIMITS, UPSTREAM_TIMEOUT, Instance, InstanceFailed, State
from serve.launcher.failures import diagnose, error_lines
from serve.launcher.readiness import is_ready
from serve.launcher.vllm_process import VllmProcess, vllm_command
from serve.planner.placement import InstancePlacement

# httpx needs a host in the URL even over a Unix socket; vLLM ignores it.
SOCKET_ROOT = "http://vllm.local"
READY_POLL_S = 0.2


def failure_reason(proc: VllmProcess, headline: str, profile: Profile) -> str:
    """One paragraph for a 503 and /v1/models: what happened, vLLM's last error line, what to change."""
    lines = proc.log_lines()
    said = error_lines(lines, limit=1)
    advice = [
        known.advice.format(family=profile.family.upper(), profile=profile.name, path=profile.path)
        for known in diagnose(lines)
    ]
    parts = [headline]
    if said:
        parts.append(f"vLLM said: {said[-1].strip()}")
    parts += [f"what to change: {text}" for text in advice]
    parts.append(f"log: {proc.log_path}")
    return "; ".join(parts)


class SupervisedInstance(Instance):
    can_restart = True

    def __init__(
        self,
        spec: ModelSpec,
        profile: Profile,
        *,
        socket_dir: Path,
        log_dir: Path,
        extra_args: list[str],
        placed: InstancePlacement | None,
        extra_env: Mapping[str, str],
        ready_timeout: float,
    ) -> None:
        self.socket = socket_dir / f"{profile.name}.sock"
        key = secrets.token_urlsafe(24)
        transport = httpx.AsyncHTTPTransport(uds=str(self.socket), limits=UPSTREAM_LIMITS)
        client = httpx.AsyncClient(transport=transport, base_url=SOCKET_ROOT, timeout=UPSTREAM_TIMEOUT)
        super().__init__(spec, client, key)
        self.profile = profile
        self.log_path = log_dir / f"vllm-{profile.name}.log"
        self.command = vllm_command(
            profile, "127.0.0.1", profile.settings.port, [*extra_args, "--uds", str(self.socket)], placed
        )
        self.env = {**extra_env, "VLLM_API_KEY": key}
        self.ready_timeout = ready_timeout
        self.proc: VllmProcess | None = None

    async def start(self) -> None:
        """Start vLLM and wait until it answers on its socket; InstanceFailed with vLLM's reason otherwise."""
        self.state = State.STARTING
        self.socket.unlink(missing_ok=True)  # vLLM leaves it behind after SIGTERM and would not bind again
        proc = self.proc = VllmProcess(self.command, self.log_path, extra_env=self.env)
        proc.start()
        started = time.monotonic()
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket))) as probe:
            while not await asyncio.to_thread(is_ready, probe, SOCKET_ROOT, self.id, self.api_key):
                if (code := proc.returncode()) is not None:
                    proc.wait_for_output()
                    raise self._failed(f"vLLM exited during start-up (code {code})")
                if time.monotonic() - started > self.ready_timeout:
                    await self.stop()
                    raise self._failed(f"vLLM was not ready after {self.ready_timeout:.0f} s")
                await asyncio.sleep(READY_POLL_S)
        self.state = State.RUNNING

    def _failed(self, headline: str) -> InstanceFailed:
        assert self.proc is not None
        return InstanceFailed(
            f"{self.id} failed to start: {failure_reason(self.proc, headline, self.profile)}"
        )

    async def stop(self) -> None:
        if self.proc is not None:
            await asyncio.to_thread(self.proc.stop)
        self.socket.unlink(missing_ok=True)
        if self.state is not State.FAILED:
            self.state = State.STOPPED

    def died(self) -> str | None:
        if self.proc is None or (code := self.proc.returncode()) is None:
            return None
        self.proc.wait_for_output(1.0)
        return f"{self.id} crashed: {failure_reason(self.proc, f'vLLM exited unexpectedly (code {code})', self.profile)}"
