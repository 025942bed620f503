"""One model server the page talks to: the entries of FRONTEND_ENDPOINTS.

The one definition of an endpoint, shared: the page reads FRONTEND_ENDPOINTS with it, and `serve check`
validates the FRONTEND_ENDPOINTS that docker-compose.yml gives the page with the same model
(serve/compose/frontend_endpoint.py is a link to this file: the page's image is built from ./frontend
alone, so the file lives here). Hence the rule for this module: standard library and pydantic only, no
`frontend.*` imports.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator

# RFC 9110 field-name characters ("token").
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


def blank_to_none(value: object) -> object:
    """Compose passes `${VLLM_API_KEY:-}` as an empty string, which means 'no key' (and '' no model/header)."""
    return None if isinstance(value, str) and not value.strip() else value


class Endpoint(BaseModel):
    """One OpenAI-compatible vLLM server."""

    name: str = Field(min_length=1, description="Label shown on the page, e.g. Qwen3-VL-8B.")
    base_url: str = Field(
        description="http(s) URL of the OpenAI API, ending in /v1 (the server root is above it)."
    )
    api_key: SecretStr | None = Field(
        default=None, description="Bearer key for this endpoint; None = FrontendSettings.api_key."
    )
    image_limit: int = Field(
        default=4,
        ge=0,
        description="Images the server takes per request (its limit-mm-per-prompt); older ones are left out.",
    )

    video_limit: int = Field(
        default=1,
        ge=0,
        description="Videos the server takes per request (its limit-mm-per-prompt video, 1 in the profiles); "
        "older ones are left out, 0 = the page offers no video upload for it.",
    )

    max_image_tokens: int | None = Field(
        default=None,
        ge=64,
        description="Visual tokens the server spends on one image at most (the profiles' mm-processor-kwargs "
        "cap, 1280); the page never prepares images above it, so the cost it shows is what the server counts.",
    )

    max_video_tokens: int | None = Field(
        default=None,
        ge=64,
        description="Visual tokens the server spends on one video at most (the profiles' videos_kwargs budget, "
        "1280); the page prepares clips within it, so the cost it shows is what the server counts.",
    )
    max_video_frames: int | None = Field(
        default=None,
        ge=4,
        description="Frames the server samples from one video at most (the profiles' media-io-kwargs "
        "max_frames, 16); the page keeps the same frames.",
    )

    model: str | None = Field(
        default=None,
        description="The model id to request; None = the first the server lists. Needed where one URL serves "
        "several models (a router or gateway lists them all at /v1/models).",
    )
    session_header: str | None = Field(
        default=None,
        description="HTTP header that carries the chat's id with every request, for a router that keeps a chat "
        "on one replica (production-stack's routerSpec.sessionKey, e.g. x-session-id); None = not sent.",
    )

    start_command: str | None = Field(
        default=None,
        description="How to start this server, shown while it is not started, e.g. "
        "`docker compose --profile 8b up -d` (compose sets it) or `python -m serve up 8b`.",
    )

    @field_validator("base_url")
    @classmethod
    def _openai_base(cls, value: str) -> str:
        url = value.strip().rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname or not parts.path.endswith("/v1"):
            raise ValueError(
                f"expected an http(s) URL ending in /v1, e.g. http://127.0.0.1:8000/v1, got {value!r}"
            )
        return url

    @field_validator("session_header")
    @classmethod
    def _header_name(cls, value: str | None) -> str | None:
        if value is not None and not _HEADER_NAME.fullmatch(value):
            raise ValueError(
                f"{value!r} is not an HTTP header name; use letters, digits and dashes, e.g. x-session-id"
            )
        return value

    _blank_is_none = field_validator("api_key", "model", "session_header", "start_command", mode="before")(
        blank_to_none
    )

    @property
    def root_url(self) -> str:
        """Server root, where /health lives."""
        return self.base_url.removesuffix("/v1")

    def session_headers(self, session_id: str | None) -> dict[str, str]:
        """The header that keeps a chat on one replica behind a session router; none without one."""
        return {self.session_header: session_id} if self.session_header and session_id else {}
