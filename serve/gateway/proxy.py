"""The upstream side of a completion: send the client's body to the instance, relay its answer byte for byte
as it arrives (no buffering), and close the upstream connection the moment the client goes (vLLM aborts the
request on disconnect, freeing its slot)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import httpx
from starlette.types import Receive

from serve.gateway.controller import Lease
from serve.gateway.errors import unavailable
from serve.gateway.instances import Instance
from serve.gateway.metrics import GatewayMetrics

T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before its answer started."""


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def unless_disconnected(receive: Receive, work: Awaitable[T]) -> T:
    """Await `work`, cancelling it if the client disconnects first (e.g. while it waits in a swap queue)."""
    job = asyncio.ensure_future(work)
    watch = asyncio.ensure_future(_disconnected(receive))
    try:
        await asyncio.wait({job, watch}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        watch.cancel()
    if job.done():
        return job.result()
    job.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await job
    raise ClientGone


async def open_upstream(instance: Instance, path: str, body: bytes) -> httpx.Response:
    """POST the body as is; the response is left open for streaming. A dead instance is a 503 with its reason."""
    request = instance.client.build_request(
        "POST", path, content=body, headers={"Content-Type": "application/json", **instance.auth_headers()}
    )
    try:
        return await instance.client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise unavailable(instance.died() or f"{instance.id} did not answer: {exc!r}") from None


async def relay(
    upstream: httpx.Response, lease: Lease, metrics: GatewayMetrics, done: Callable[[], None]
) -> AsyncIterator[bytes]:
    """The upstream body chunk by chunk; `done` releases the lease however the stream ends."""
    try:
        async for chunk in upstream.aiter_raw():
            if lease.swap is not None:
                lease.swap.first_token(metrics)
            yield chunk
    except httpx.HTTPError:
        pass  # the instance died mid-answer: end the stream (the client sees it cut, as from vLLM itself)
    finally:
        await upstream.aclose()
        done()
