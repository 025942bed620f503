"""Is an OpenAI-compatible vLLM endpoint up: /health answers 200 and /v1/models lists the served name."""

from __future__ import annotations

import httpx

PROBE_TIMEOUT_SECONDS = 2.0


def health_ok(client: httpx.Client, root_url: str) -> bool:
    try:
        return client.get(f"{root_url}/health", timeout=PROBE_TIMEOUT_SECONDS).status_code == 200
    except httpx.HTTPError:
        return False


def served_models(client: httpx.Client, root_url: str, api_key: str | None) -> list[str]:
    """Model ids /v1/models lists; empty when it cannot be read (not up yet, wrong key)."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = client.get(f"{root_url}/v1/models", headers=headers, timeout=PROBE_TIMEOUT_SECONDS)
        response.raise_for_status()
        return [entry["id"] for entry in response.json().get("data", [])]
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return []


def is_ready(client: httpx.Client, root_url: str, served_name: str, api_key: str | None) -> bool:
    return health_ok(client, root_url) and served_name in served_models(client, root_url, api_key)
