"""An instance the gateway attaches to by URL (compose: the model containers on the compose network). It does
not start or stop it; it waits for it to be ready and swaps it by sleep/wake."""

from __future__ import annotations

import asyncio
import time

import httpx

from serve.gateway.config import ModelSpec
from serve.gateway.instances import UPSTREAM_LIMITS, UPSTREAM_TIMEOUT, Instance, InstanceFailed, State
from serve.launcher.readiness import health_ok, served_models

READY_POLL_S = 1.0


def root_of(url: str) -> str:
    """http://vllm-8b:8000/v1 -> http://vllm-8b:8000 (the gateway adds /v1/... itself)."""
    url = url.rstrip("/")
    return url[: -len("/v1")] if url.endswith("/v1") else url


class RemoteInstance(Instance):
    def __init__(self, spec: ModelSpec, url: str, api_key: str | None, ready_timeout: float) -> None:
        self.root = root_of(url)
        client = httpx.AsyncClient(
            base_url=self.root, timeout=UPSTREAM_TIMEOUT, limits=UPSTREAM_LIMITS, follow_redirects=False
        )
        super().__init__(spec, client, api_key)
        self.ready_timeout = ready_timeout

    async def start(self) -> None:
        """Wait until the container answers and serves this model (it may still be downloading)."""
        self.state = State.STARTING
        started = time.monotonic()
        with httpx.Client() as probe:
            while True:
                up = await asyncio.to_thread(health_ok, probe, self.root)
                if up and self.id in await asyncio.to_thread(served_models, probe, self.root, self.api_key):
                    break
                if time.monotonic() - started > self.ready_timeout:
                    raise InstanceFailed(
                        f"{self.id}: {self.root} did not serve {self.id} within {self.ready_timeout:.0f} s "
                        "(is the container up, and does it have the same key?)"
                    )
                await asyncio.sleep(READY_POLL_S)
        try:
            asleep = await self.is_sleeping()
        except httpx.HTTPError:  # no dev mode: it cannot sleep, so it is awake (a swap then says why)
            asleep = False
        self.state = State.SLEEPING if asleep else State.RUNNING

    async def stop(self) -> None:
        raise InstanceFailed(
            f"{self.id}: the gateway cannot stop {self.root}; use --swap sleep with --upstream"
        )
