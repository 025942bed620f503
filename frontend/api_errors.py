"""Turn what can go wrong talking to a vLLM server into one sentence for the page: what happened, what to do."""

from __future__ import annotations

import re

import httpx
import openai

# vLLM's own wording (vllm/renderers/params.py, vllm/multimodal/processing/context.py, v1 input processor).
_TOO_LONG = re.compile(r"maximum context length|longer than the maximum model length", re.IGNORECASE)
_TOO_MANY_IMAGES = re.compile(r"At most (\d+) image", re.IGNORECASE)
_BAD_IMAGE = re.compile(r"image|PIL|decode|pixel", re.IGNORECASE)


def server_message(error: openai.APIStatusError) -> str:
    """The server's own error text (vLLM: {"error": {"message": ...}}), without the SDK's prefix."""
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else inner
        if message:
            return str(message)
    return error.message


def describe_api_error(
    error: BaseException, endpoint: str, *, timeout_s: float, mid_answer: bool = False
) -> str:
    """Why a request to `endpoint` failed, phrased for someone looking at the chat. `mid_answer`: tokens
    had arrived, so a lost connection means the server went away during the answer."""
    if isinstance(error, openai.APITimeoutError | httpx.TimeoutException):
        return (
            f"{endpoint} sent nothing for {timeout_s:g} s, so the request was given up. The server may be "
            "overloaded; try again, or raise FRONTEND_REQUEST_TIMEOUT_S."
        )
    if mid_answer and isinstance(error, openai.APIConnectionError | httpx.TransportError):
        return f"The connection to {endpoint} broke mid-answer (the server stopped or restarted)."
    if isinstance(error, openai.APIConnectionError):
        return (
            f"Cannot reach {endpoint}: it is down or still loading. The sidebar shows its state; "
            "try again once it is ready."
        )
    if isinstance(error, openai.AuthenticationError | openai.PermissionDeniedError):
        return f"{endpoint} refused the API key: set FRONTEND_API_KEY (or the endpoint's api_key) to its key."
    if isinstance(error, openai.NotFoundError):
        return f"{endpoint} does not serve that model any more (restarted with another?). Pick it again."
    if isinstance(error, openai.APIStatusError):
        return _describe_rejection(error, endpoint)
    if isinstance(error, openai.APIError):  # an error event inside the stream
        return f"{endpoint} stopped with an error mid-answer: {error.message}"
    return f"Talking to {endpoint} failed unexpectedly: {type(error).__name__}: {error}"


def _describe_rejection(error: openai.APIStatusError, endpoint: str) -> str:
    message = server_message(error)
    status = error.status_code
    if status >= 500:
        return f"{endpoint} failed on its side (HTTP {status}): {message}"
    if _TOO_LONG.search(message):
        return (
            f"This conversation no longer fits {endpoint}'s context: {message} Start a new chat, "
            "lower the image token budget, or send fewer images."
        )
    if match := _TOO_MANY_IMAGES.search(message):
        return (
            f"{endpoint} takes at most {match.group(1)} image(s) per request; "
            "set its image_limit in FRONTEND_ENDPOINTS to match the server."
        )
    if _BAD_IMAGE.search(message):
        return f"{endpoint} could not use an image: {message}"
    return f"{endpoint} rejected the request (HTTP {status}): {message}"
