"""The gateway's HTTP surface, and nothing else: /v1/chat/completions, /v1/completions, /v1/models, /health,
/metrics. Every other path (vLLM's /tokenize, /sleep, /collective_rpc, /invocations, ...) is a 404."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import time
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from serve.gateway.config import GatewaySettings
from serve.gateway.controller import Lease, SwapController
from serve.gateway.errors import GatewayError, bad_request, not_found, too_large, unauthorized, unknown_model
from serve.gateway.metrics import CONTENT_TYPE, GatewayMetrics
from serve.gateway.proxy import ClientGone, open_upstream, relay, unless_disconnected

NOTICE_HEADER = "x-serve-switch-notice"
SWAP_MS_HEADER = "X-Serve-Swap-Ms"
CREATED = int(time.time())
# Upstream headers a client may rely on; hop-by-hop ones and vLLM's own are not passed on.
PASSED_HEADERS = ("content-type", "content-encoding", "x-request-id")


class Gateway:
    """What the routes need: the settings, the swap controller and the metrics."""

    def __init__(
        self, settings: GatewaySettings, controller: SwapController, metrics: GatewayMetrics
    ) -> None:
        self.settings = settings
        self.controller = controller
        self.metrics = metrics

    def authorized(self, request: Request) -> bool:
        if self.settings.api_key is None:
            return True
        expected = f"Bearer {self.settings.api_key.get_secret_value()}".encode()
        return secrets.compare_digest(request.headers.get("authorization", "").encode(), expected)

    async def body_of(self, request: Request) -> tuple[dict, bytes]:
        """The JSON object of the request and its bytes (forwarded as they came), read up to the cap."""
        cap = self.settings.max_body_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise too_large(cap)
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > cap:
                raise too_large(cap)
            chunks.append(chunk)
        raw = b"".join(chunks)
        try:
            payload = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise bad_request(f"the request body is not valid JSON: {exc}") from None
        if not isinstance(payload, dict):
            raise bad_request("the request body must be a JSON object with `model` and the request fields")
        return payload, raw

    def model_of(self, payload: dict) -> str:
        model = payload.get("model")
        valid = list(self.controller.slots)
        if model is None:
            raise bad_request(f"`model` is missing: name one of {', '.join(valid)}")
        if not isinstance(model, str) or model not in self.controller.slots:
            raise unknown_model(model, valid)
        return model


def _ms(seconds: float) -> str:
    return str(round(seconds * 1000))


async def _completion(gateway: Gateway, request: Request, path: str) -> Response:
    model = "unknown"
    try:
        if not gateway.authorized(request):
            raise unauthorized()
        payload, body = await gateway.body_of(request)
        model = gateway.model_of(payload)
        wants_notice = payload.get("stream") is True and request.headers.get(NOTICE_HEADER) == "1"
        if wants_notice and gateway.controller.needs_swap(model):
            return StreamingResponse(
                _noticed_stream(gateway, request, model, path, body), media_type="text/event-stream"
            )
        lease = await unless_disconnected(request.receive, gateway.controller.acquire(model))
        return await _answer(gateway, model, path, body, lease)
    except GatewayError as error:
        gateway.metrics.requests.labels(model, str(error.status)).inc()
        return error.response()
    except ClientGone:
        gateway.metrics.requests.labels(model, "499").inc()
        return Response(status_code=499)


async def _answer(gateway: Gateway, model: str, path: str, body: bytes, lease: Lease) -> Response:
    controller = gateway.controller
    try:
        upstream = await open_upstream(controller.slots[model].instance, path, body)
    except GatewayError:
        controller.release(model)
        raise
    gateway.metrics.requests.labels(model, str(upstream.status_code)).inc()
    headers = {name: upstream.headers[name] for name in PASSED_HEADERS if name in upstream.headers}
    headers[SWAP_MS_HEADER] = _ms(lease.waited_s) if lease.swap else "0"
    return StreamingResponse(
        relay(upstream, lease, gateway.metrics, lambda: controller.release(model)),
        status_code=upstream.status_code,
        headers=headers,
    )


async def _noticed_stream(
    gateway: Gateway, request: Request, model: str, path: str, body: bytes
) -> AsyncIterator[bytes]:
    """Opt-in: an SSE comment first (SDKs skip comments), then the answer once the model is swapped in. The
    status line is already sent, so a failure arrives as an error event."""
    yield f": switching to {model}\n\n".encode()
    try:
        lease = await gateway.controller.acquire(model)
        response = await _answer(gateway, model, path, body, lease)
    except GatewayError as error:
        gateway.metrics.requests.labels(model, str(error.status)).inc()
        yield error.sse_event()
        return
    assert isinstance(response, StreamingResponse)
    async for chunk in response.body_iterator:
        yield chunk if isinstance(chunk, bytes) else chunk.encode()


def build_app(gateway: Gateway, lifespan=None) -> Starlette:
    controller = gateway.controller

    async def chat_completions(request: Request) -> Response:
        return await _completion(gateway, request, "/v1/chat/completions")

    async def completions(request: Request) -> Response:
        return await _completion(gateway, request, "/v1/completions")

    async def models(request: Request) -> Response:
        if not gateway.authorized(request):
            return unauthorized().response()
        data = [
            {
                "id": slot.instance.id,
                "object": "model",
                "created": CREATED,
                "owned_by": "serve-gateway",
                "state": str(slot.instance.state),
                "reason": slot.instance.reason,
                "max_model_len": slot.instance.spec.max_model_len,
                "profile": slot.instance.spec.profile,
            }
            for slot in controller.slots.values()
        ]
        return JSONResponse({"object": "list", "data": data})

    async def health(request: Request) -> Response:
        states = {slot.instance.id: str(slot.instance.state) for slot in controller.slots.values()}
        return JSONResponse({"status": "ok", "models": states})

    async def metrics(request: Request) -> Response:
        if not gateway.authorized(request):
            return unauthorized().response()
        return Response(gateway.metrics.render(), media_type=CONTENT_TYPE)

    async def other(request: Request) -> Response:
        if request.url.path in served:
            message = f"{request.method} is not allowed on {request.url.path}"
            return GatewayError(405, message, kind="invalid_request_error").response()
        return not_found(request.url.path).response()

    everything = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/completions", completions, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
        Route("/metrics", metrics, methods=["GET"]),
    ]
    served = {route.path for route in routes}
    routes.append(Route("/{path:path}", other, methods=everything))

    return Starlette(routes=routes, lifespan=lifespan)


@contextlib.asynccontextmanager
async def running(controller: SwapController) -> AsyncIterator[None]:
    """Lifespan: the swap worker runs while the app does; on shutdown it stops and so do the instances."""
    worker = asyncio.create_task(controller.run(), name="swap-worker")
    try:
        yield
    finally:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await worker
        await controller.close()
