"""Typed settings of the gateway: what the CLI (or a test) decides, in one place."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr

DEFAULT_PORT = 8000
# Base64 images make bodies large; vLLM itself has no cap, the gateway has one so a client cannot exhaust it.
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024


class ModelSpec(BaseModel):
    """One configured model as clients see it."""

    id: str = Field(description="Served name: what requests put in `model`.")
    profile: str = Field(description="Profile name (8b, 4b, ...).")
    max_model_len: int = Field(description="Context in tokens (the placement's, else the profile's).")


class Policy(BaseModel):
    """How swaps are decided: queue bound, drain wait, anti-thrashing and idle time."""

    max_awake: int = Field(1, ge=1, description="Instances awake at once.")
    queue_limit: int = Field(64, ge=1, description="Requests waiting for a swap, all models together.")
    drain_timeout_s: float = Field(
        120.0, gt=0, description="Longest wait for in-flight requests before a swap."
    )
    min_awake_s: float = Field(
        10.0, ge=0, description="A model in use stays awake at least this long (no thrashing)."
    )
    idle_ttl_s: float | None = Field(None, gt=0, description="Put a model away after this long unused.")
    ready_timeout_s: float = Field(3600.0, gt=0, description="Longest wait for an instance to be ready.")
    retry_after_s: int = Field(5, ge=1, description="Retry-After of a 503 when the queue is full.")


class GatewaySettings(BaseModel):
    """The HTTP side: bind address, the one API key, the body cap."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    api_key: SecretStr | None = Field(
        None, description="Bearer key clients send; None: no key (loopback only)."
    )
    max_body_bytes: int = Field(DEFAULT_MAX_BODY_BYTES, ge=1024)
