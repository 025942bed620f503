"""One model server the page talks to: the entries of FRONTEND_ENDPOINTS.

The one definition of an endpoint, shared: the page reads FRONTEND_ENDPOINTS with it, and `serve check`
validates the FRONTEND_ENDPOINTS that docker-compose.yml gives the page with the same model
(serve/compose/frontend_endpoint.py is a link to this file: the page's image is built from ./frontend
alone, so the file lives here). Hence the rule for this module: standard library and pydantic only, no
`frontend.*` imports.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import BaseModel, Field, SecretStr, field_validator


def blank_to_none(value: object) -> object:
    """Compose passes `${VLLM_API_KEY:-}` as an empty string, which means 'no key'."""
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

    max_image_tokens: int | None = Field(
        default=None,
        ge=64,
        description="Visual tokens the server spends on one image at most (the profiles' mm-processor-kwargs "
        "cap, 1280); the page never prepares images above it, so the cost it shows is what the server counts.",
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

    _blank_key = field_validator("api_key", mode="before")(blank_to_none)

    @property
    def root_url(self) -> str:
        """Server root, where /health lives."""
        return self.base_url.removesuffix("/v1")
