"""Is an OpenAI-compatible vLLM endpoint up: /health answers 200 and /v1/models lists the served name."""

from __future__ import annotations

import httpx
from pydantic import BaseModel, Field, ValidationError

PROBE_TIMEOUT_SECONDS = 2.0


class ModelEntry(BaseModel):
    """One entry of /v1/models (vLLM adds max_model_len and root to OpenAI's fields)."""

    id: str = Field(description="Served model name, what requests put in `model`.")
    max_model_len: int | None = Field(default=None, description="Context length in tokens.")
    root: str | None = Field(default=None, description="Checkpoint the name serves.")


class _ModelList(BaseModel):
    data: list[ModelEntry]


class ModelsUnavailable(Exception):
    """/v1/models could not be read; `status` is its HTTP status (401: a key is needed), None if no answer."""

    def __init__(self, status: int | None) -> None:
        super().__init__(f"/v1/models answered {status}" if status else "/v1/models did not answer")
        self.status = status


def health_status(client: httpx.Client, root_url: str) -> int | None:
    """The status /health answers with, or None when nothing answers (refused, reset, timed out)."""
    try:
        return client.get(f"{root_url}/health", timeout=PROBE_TIMEOUT_SECONDS).status_code
    except httpx.HTTPError:
        return None


def health_ok(client: httpx.Client, root_url: str) -> bool:
    return health_status(client, root_url) == 200


def model_entries(client: httpx.Client, root_url: str, api_key: str | None) -> list[ModelEntry]:
    """What /v1/models lists; raises ModelsUnavailable when it cannot be read (not up yet, wrong key)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = client.get(f"{root_url}/v1/models", headers=headers, timeout=PROBE_TIMEOUT_SECONDS)
    except httpx.HTTPError:
        raise ModelsUnavailable(None) from None
    if response.status_code != 200:
        raise ModelsUnavailable(response.status_code)
    try:
        return _ModelList.model_validate_json(response.content).data
    except ValidationError:
        raise ModelsUnavailable(response.status_code) from None


def served_models(client: httpx.Client, root_url: str, api_key: str | None) -> list[str]:
    """Model ids /v1/models lists; empty when it cannot be read (not up yet, wrong key)."""
    try:
        return [entry.id for entry in model_entries(client, root_url, api_key)]
    except ModelsUnavailable:
        return []


def is_ready(client: httpx.Client, root_url: str, served_name: str, api_key: str | None) -> bool:
    return health_ok(client, root_url) and served_name in served_models(client, root_url, api_key)
