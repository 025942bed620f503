"""An instance behind the gateway: its state, how to reach it, and the sleep/wake calls every vLLM has.

Two kinds: supervised.py starts vLLM itself on a Unix socket (bare metal), remote.py attaches to a URL
(compose). Both put a model to sleep the same way, over HTTP with VLLM_SERVER_DEV_MODE=1.
"""

from __future__ import annotations

import asyncio
import time
from enum import StrEnum

import httpx

from serve.gateway.config import ModelSpec

SLEEP_POLL_S = 0.1
# Generation can take minutes; only connecting is bounded (a dead instance is noticed at once).
UPSTREAM_TIMEOUT = httpx.Timeout(None, connect=10.0)
UPSTREAM_LIMITS = httpx.Limits(max_connections=1000, max_keepalive_connections=100)


class State(StrEnum):
    RUNNING = "running"
    SLEEPING = "sleeping"
    STOPPED = "stopped"
    STARTING = "starting"
    FAILED = "failed"


class InstanceFailed(Exception):
    """The instance cannot serve; the message is the reason shown to clients (503) and in /v1/models."""


class Instance:
    """State and transport shared by both kinds; subclasses add start/stop."""

    can_restart = False

    def __init__(self, spec: ModelSpec, client: httpx.AsyncClient, api_key: str | None) -> None:
        self.spec = spec
        self.client = client
        self.api_key = api_key
        self.state = State.STOPPED
        self.reason: str | None = None

    @property
    def id(self) -> str:
        return self.spec.id

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    def fail(self, reason: str) -> None:
        self.state = State.FAILED
        self.reason = reason

    async def start(self) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def died(self) -> str | None:
        """Why a running instance is gone (it crashed), or None while it lives."""
        return None

    async def close(self) -> None:
        await self.client.aclose()

    async def sleep(self, timeout: float) -> None:
        """Level 1 (weights to CPU RAM, KV cache freed), mode=wait: requests in flight finish first. Both are
        query arguments; vLLM ignores a body, and its default mode=abort would cut requests off."""
        await self._dev_call("/sleep", {"level": "1", "mode": "wait"}, timeout)
        await self._until_sleeping(True, timeout)
        self.state = State.SLEEPING

    async def wake(self, timeout: float) -> None:
        self.state = State.STARTING
        await self._dev_call("/wake_up", {}, timeout)
        await self._until_sleeping(False, timeout)
        self.state = State.RUNNING

    async def is_sleeping(self) -> bool:
        response = await self.client.get("/is_sleeping", headers=self.auth_headers(), timeout=10.0)
        response.raise_for_status()
        return bool(response.json().get("is_sleeping"))

    async def _dev_call(self, path: str, params: dict[str, str], timeout: float) -> None:
        try:
            response = await self.client.post(
                path, params=params, headers=self.auth_headers(), timeout=timeout
            )
        except httpx.HTTPError as exc:
            raise InstanceFailed(f"{self.id}: POST {path} failed: {exc!r}") from None
        if response.status_code == 404:
            raise InstanceFailed(
                f"{self.id}: POST {path} answered 404: the instance runs without VLLM_SERVER_DEV_MODE=1, so it "
                "cannot sleep; start it with that variable or use --swap restart"
            )
        if response.status_code != 200:
            raise InstanceFailed(
                f"{self.id}: POST {path} answered {response.status_code}: {response.text[:300]}"
            )

    async def _until_sleeping(self, wanted: bool, timeout: float) -> None:
        """GET /is_sleeping is the readiness of a sleeping engine (/health stays 200 while it sleeps)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if await self.is_sleeping() == wanted:
                    return
            except httpx.HTTPError:
                pass
            if (why := self.died()) is not None:
                raise InstanceFailed(why)
            await asyncio.sleep(SLEEP_POLL_S)
        raise InstanceFailed(f"{self.id}: not {'asleep' if wanted else 'awake'} after {timeout:.0f} s")
