"""Is a vLLM endpoint usable? Probes /health and /v1/models; no Streamlit here, so it is testable alone.

vLLM 0.32 opens its port only once the weights are loaded, so a server that is still loading refuses
connections just like one that is not running: both are `down`, with a reason that says so. `loading`
is a server that answers /health with a 5xx (vLLM: 503 once the engine has died; proxies and vLLM's
preload health server: 503 while starting).
"""

from __future__ import annotations

import errno
import socket
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum

import httpx
from pydantic import BaseModel, Field, SecretStr, ValidationError

from frontend.settings import Endpoint

TIMEOUT_SECONDS = 2.0


class State(StrEnum):
    READY = "ready"
    LOADING = "loading"
    DOWN = "down"


class ServedModel(BaseModel):
    """One entry of /v1/models (vLLM adds max_model_len to OpenAI's fields)."""

    id: str = Field(description="Served model name, what requests put in `model`.")
    max_model_len: int | None = Field(default=None, description="Context length in tokens.")
    root: str | None = Field(
        default=None, description="Checkpoint the name serves, e.g. Qwen/Qwen3-VL-8B-Instruct."
    )


class _ModelList(BaseModel):
    data: list[ServedModel]


class EndpointStatus(BaseModel):
    endpoint: Endpoint = Field(description="The endpoint probed.")
    state: State = Field(description="ready: answers requests; loading: up but not healthy; down: unusable.")
    models: list[ServedModel] = Field(default_factory=list, description="Served models (when ready).")
    reason: str = Field(default="", description="Why it is not ready, in words for the page.")

    @property
    def model(self) -> ServedModel:
        """The model this entry asks for: its `model` when it names one (a ready status lists it), else the
        first the server lists. Only for a ready status."""
        wanted = self.endpoint.model
        return next((m for m in self.models if m.id == wanted), self.models[0]) if wanted else self.models[0]


def check_endpoint(
    endpoint: Endpoint,
    api_key: SecretStr | None = None,
    *,
    timeout: float = TIMEOUT_SECONDS,
    transport: httpx.BaseTransport | None = None,
) -> EndpointStatus:
    """Probe one endpoint; never raises. `api_key` is used when the endpoint has none of its own."""
    key = endpoint.api_key or api_key
    headers = {"Authorization": f"Bearer {key.get_secret_value()}"} if key else {}

    def status(state: State, reason: str = "", models: list[ServedModel] | None = None) -> EndpointStatus:
        return EndpointStatus(endpoint=endpoint, state=state, reason=reason, models=models or [])

    try:
        with httpx.Client(timeout=timeout, headers=headers, transport=transport) as client:
            health = client.get(f"{endpoint.root_url}/health")
            if health.status_code >= 500:
                return status(
                    State.LOADING, f"/health answered {health.status_code}: not ready, or the engine died"
                )
            if health.status_code != 200:
                return status(State.DOWN, f"/health answered {health.status_code}: is this a vLLM server?")
            listing = client.get(f"{endpoint.base_url}/models")
            if listing.status_code in (401, 403):
                return status(State.DOWN, f"/v1/models answered {listing.status_code}: set FRONTEND_API_KEY")
            listing.raise_for_status()
            models = _ModelList.model_validate_json(listing.content).data
    except httpx.TimeoutException:
        return status(State.DOWN, f"no answer within {timeout:g} s")
    except httpx.HTTPStatusError as error:
        return status(State.DOWN, f"/v1/models answered {error.response.status_code}")
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        return status(State.DOWN, _connection_problem(error))
    except ValidationError:  # includes invalid JSON
        return status(State.DOWN, "/v1/models did not answer like vLLM")
    if not models:
        return status(State.DOWN, "/v1/models lists no model")
    if endpoint.model and endpoint.model not in (listed := [m.id for m in models]):
        # Behind a router, a model whose replicas are all still loading is not listed yet.
        return status(
            State.DOWN,
            f"/v1/models does not list {endpoint.model!r} (it lists {', '.join(listed)}): its replicas are "
            "not ready yet, or `model` in FRONTEND_ENDPOINTS is misspelt",
        )
    return status(State.READY, models=models)


def check_endpoints(endpoints: Sequence[Endpoint], api_key: SecretStr | None = None) -> list[EndpointStatus]:
    """All endpoints in parallel (each may take up to the timeout), in the order given."""
    with ThreadPoolExecutor(max_workers=max(1, len(endpoints))) as pool:
        return list(pool.map(lambda endpoint: check_endpoint(endpoint, api_key), endpoints))


def _connection_problem(error: Exception) -> str:
    """Words for the usual causes, found in the exception chain httpx wraps."""
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, socket.gaierror):
            return "host not found (in compose: the service is not running)"
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return (
                "connection refused: not running, or still loading (vLLM listens once the weights are loaded)"
            )
        cause = cause.__cause__ or cause.__context__
    return f"cannot connect: {error}"
