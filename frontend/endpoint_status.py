"""Is a vLLM endpoint usable? Probes /health and /v1/models; no Streamlit here, so it is testable alone.

vLLM 0.32 opens its port only once the weights are loaded, so a server that is still loading refuses
connections just like one that is not running. An endpoint that refuses connections (or whose compose
service does not exist) and was never seen ready by this page is `not started`, with how to start it: under
the default compose profile the other model is simply not running, which is no error. Once it was ready, the
same refusal is `down`. `loading` is a server that answers /health with a 5xx (vLLM: 503 once the engine
has died; proxies and vLLM's preload health server: 503 while starting).

Behind the gateway (`python -m serve gateway`) one URL lists every model with its `state`: a model that is
sleeping, stopped or starting is `asleep`, not broken: it can be picked, and the gateway switches to it when
a request names it. Only a model the gateway failed to start is `down` (with the gateway's reason).
"""

from __future__ import annotations

import errno
import socket
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from enum import StrEnum
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, Field, SecretStr, ValidationError

from frontend.settings import Endpoint

TIMEOUT_SECONDS = 2.0


class State(StrEnum):
    READY = "ready"
    ASLEEP = "asleep"  # behind the gateway, not awake now: a request for it wakes it
    LOADING = "loading"
    NOT_STARTED = "not started"
    DOWN = "down"


class GatewayState(StrEnum):
    """A model's `state` in the gateway's /v1/models (GATEWAY-CONTRACT: running|sleeping|stopped|starting|failed)."""

    RUNNING = "running"
    SLEEPING = "sleeping"
    STOPPED = "stopped"
    STARTING = "starting"
    FAILED = "failed"


# What each gateway state means for the page, in words shown next to the model.
_ASLEEP_REASONS = {
    GatewayState.SLEEPING: "asleep: asking it switches to it (a few seconds)",
    GatewayState.STOPPED: "stopped: asking it starts it (as long as a model start takes)",
    GatewayState.STARTING: "starting: answers once it is up",
}


class ServedModel(BaseModel):
    """One entry of /v1/models (vLLM adds max_model_len to OpenAI's fields; the gateway adds state and reason)."""

    id: str = Field(description="Served model name, what requests put in `model`.")
    max_model_len: int | None = Field(default=None, description="Context length in tokens.")
    root: str | None = Field(
        default=None, description="Checkpoint the name serves, e.g. Qwen/Qwen3-VL-8B-Instruct."
    )
    state: GatewayState | None = Field(
        default=None, description="The gateway's state of the model; None from a plain vLLM (always running)."
    )
    reason: str | None = Field(default=None, description="The gateway's word on why it failed or stopped.")

    @property
    def behind_gateway(self) -> bool:
        return self.state is not None


class _ModelList(BaseModel):
    data: list[ServedModel]


class EndpointStatus(BaseModel):
    endpoint: Endpoint = Field(description="The endpoint probed.")
    state: State = Field(
        description="ready: answers requests; asleep: behind the gateway, woken by a request; loading: up but "
        "not healthy; not started: nothing listens and it was never ready; down: unusable."
    )
    models: list[ServedModel] = Field(default_factory=list, description="Served models (when ready/asleep).")
    reason: str = Field(default="", description="Why it is not ready, in words for the page.")

    @property
    def pickable(self) -> bool:
        """A request to it can be answered: ready, or asleep behind the gateway (which wakes it)."""
        return self.state in (State.READY, State.ASLEEP)

    @property
    def model(self) -> ServedModel:
        """The model this entry asks for: its `model` when it names one (a pickable status lists it), else the
        first the server lists. Only for a pickable status."""
        wanted = self.endpoint.model
        return next((m for m in self.models if m.id == wanted), self.models[0]) if wanted else self.models[0]


def check_endpoint(
    endpoint: Endpoint,
    api_key: SecretStr | None = None,
    *,
    timeout: float = TIMEOUT_SECONDS,
    transport: httpx.BaseTransport | None = None,
    was_ready: bool = False,
) -> EndpointStatus:
    """Probe one endpoint; never raises. `api_key` is used when the endpoint has none of its own; `was_ready`:
    this page saw it ready before (so nothing listening means it went down, not that it was never started)."""
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
        if not was_ready and _nothing_listens(error):
            return status(State.NOT_STARTED, _not_started(endpoint, error))
        return status(State.DOWN, _connection_problem(error))
    except ValidationError:  # includes invalid JSON
        return status(State.DOWN, "/v1/models did not answer like vLLM")
    if not models:
        return status(State.DOWN, "/v1/models lists no model")
    if endpoint.model and endpoint.model not in (listed := [m.id for m in models]):
        # The gateway lists every model it fronts, whatever its state: this one is not behind it.
        if any(m.behind_gateway for m in models):
            how = f"; start it with `{endpoint.start_command}`" if endpoint.start_command else ""
            return status(
                State.NOT_STARTED,
                f"the gateway does not front {endpoint.model!r} (it fronts {', '.join(listed)}): its model "
                f"was not running when the gateway started{how}",
            )
        # Behind a router, a model whose replicas are all still loading is not listed yet.
        return status(
            State.DOWN,
            f"/v1/models does not list {endpoint.model!r} (it lists {', '.join(listed)}): its replicas are "
            "not ready yet, or `model` in FRONTEND_ENDPOINTS is misspelt",
        )
    return _gateway_status(status(State.READY, models=models))


def _gateway_status(ready: EndpointStatus) -> EndpointStatus:
    """A listed model's gateway state decides (a plain vLLM has none: ready)."""
    model = ready.model
    if model.state is None or model.state is GatewayState.RUNNING:
        return ready
    if model.state is GatewayState.FAILED:
        why = f": {model.reason}" if model.reason else ""
        return ready.model_copy(
            update={"state": State.DOWN, "reason": f"the gateway could not start it{why}"}
        )
    return ready.model_copy(update={"state": State.ASLEEP, "reason": _ASLEEP_REASONS[model.state]})


class ReadySeen:
    """Endpoints this process has seen ready (by base URL and model), thread-safe."""

    def __init__(self) -> None:
        self._seen: set[tuple[str, str | None]] = set()
        self._lock = threading.Lock()

    def __contains__(self, endpoint: Endpoint) -> bool:
        with self._lock:
            return (endpoint.base_url, endpoint.model) in self._seen

    def add(self, endpoint: Endpoint) -> None:
        with self._lock:
            self._seen.add((endpoint.base_url, endpoint.model))


def check_endpoints(
    endpoints: Sequence[Endpoint], api_key: SecretStr | None = None, seen: ReadySeen | None = None
) -> list[EndpointStatus]:
    """All endpoints in parallel (each may take up to the timeout), in the order given; `seen` remembers which
    were ever ready."""
    seen = seen if seen is not None else ReadySeen()

    def check(endpoint: Endpoint) -> EndpointStatus:
        status = check_endpoint(endpoint, api_key, was_ready=endpoint in seen)
        if status.pickable:
            seen.add(endpoint)
        return status

    with ThreadPoolExecutor(max_workers=max(1, len(endpoints))) as pool:
        return list(pool.map(check, endpoints))


def _not_started(endpoint: Endpoint, error: Exception) -> str:
    """Why nothing answers, and the command that starts it (when the endpoint names one)."""
    parts = urlsplit(endpoint.base_url)
    if any(isinstance(cause, socket.gaierror) for cause in _causes(error)):
        why = f"no host {parts.hostname} (in compose: its service is not running)"
    else:
        why = f"nothing listens on {parts.netloc} (not running, or still loading its weights)"
    return f"{why}; start it with `{endpoint.start_command}`" if endpoint.start_command else why


def _nothing_listens(error: Exception) -> bool:
    """Connection refused, or a host name that does not resolve (compose: a service that is not running)."""
    return any(isinstance(cause, socket.gaierror) or _refused(cause) for cause in _causes(error))


def _causes(error: BaseException) -> Iterator[BaseException]:
    """The exception and the chain httpx wraps around the socket error."""
    cause: BaseException | None = error
    while cause is not None:
        yield cause
        cause = cause.__cause__ or cause.__context__


def _refused(cause: BaseException) -> bool:
    return isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED


def _connection_problem(error: Exception) -> str:
    """Words for the usual causes."""
    for cause in _causes(error):
        if isinstance(cause, socket.gaierror):
            return "host not found (in compose: the service is not running)"
        if _refused(cause):
            return "connection refused: it stopped (it was ready before); see its log, or start it again"
    return f"cannot connect: {error}"
