"""Errors the gateway answers with, OpenAI-shaped ({"error": {"message", "type", "code"}}) so SDKs show them."""

from __future__ import annotations

import json

from starlette.responses import JSONResponse


class GatewayError(Exception):
    """Raised anywhere in the gateway; routes turn it into its HTTP answer."""

    def __init__(
        self, status: int, message: str, *, kind: str, code: str | None = None, headers: dict | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.kind = kind
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict:
        return {"error": {"message": self.message, "type": self.kind, "code": self.code}}

    def response(self) -> JSONResponse:
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)

    def sse_event(self) -> bytes:
        """The error as a last SSE event, for a stream whose status line is already sent."""
        return f"data: {json.dumps(self.body())}\n\ndata: [DONE]\n\n".encode()


def unauthorized() -> GatewayError:
    return GatewayError(
        401,
        "missing or wrong API key: send Authorization: Bearer $VLLM_API_KEY",
        kind="invalid_request_error",
        code="invalid_api_key",
    )


def not_found(path: str) -> GatewayError:
    return GatewayError(
        404,
        f"{path} is not served by the gateway: it serves /v1/chat/completions, /v1/completions, /v1/models, "
        "/health and /metrics",
        kind="invalid_request_error",
        code="not_found",
    )


def unknown_model(model: object, valid: list[str]) -> GatewayError:
    return GatewayError(
        404,
        f"The model {model!r} does not exist. Valid models: {', '.join(valid)}",
        kind="invalid_request_error",
        code="model_not_found",
    )


def bad_request(message: str) -> GatewayError:
    return GatewayError(400, message, kind="invalid_request_error", code="invalid_request")


def too_large(limit: int) -> GatewayError:
    return GatewayError(
        413,
        f"request body is larger than the gateway's cap of {limit / 1024 / 1024:g} MiB: send smaller or fewer "
        "images (or raise --max-body-mb)",
        kind="invalid_request_error",
        code="request_too_large",
    )


def unavailable(
    message: str, *, retry_after: int | None = None, code: str = "model_unavailable"
) -> GatewayError:
    headers = {"Retry-After": str(retry_after)} if retry_after else None
    return GatewayError(503, message, kind="service_unavailable", code=code, headers=headers)
