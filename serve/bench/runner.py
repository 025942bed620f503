"""Sends a workload to one OpenAI-compatible endpoint and times every request from the client's side.

Two clients. The default (`http`) is lean, so that the client is not what it measures: the request
bodies are serialized before the clock starts, httpx posts them over kept-alive connections (one per
request in flight, like vLLM's own benchmark), and each server-sent event is parsed with orjson into
plain dicts, reading only the delta's text fields and the usage. `sdk` streams through the OpenAI SDK
(AsyncOpenAI), which builds a pydantic object per chunk: what an SDK user's program sees, at ~2.5x the
client CPU per request (~0.3 ms more per chunk; benchmarks/README.md, section (h)).

Time to first token is the first chunk carrying text; inter-token latency is the gaps between chunks
carrying text; token counts come from the usage chunk (stream_options include_usage). Requests are
never retried: a retry would hide a failure and distort the latencies.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

import httpx
import openai
import orjson
from openai import AsyncOpenAI

from serve.bench.metrics import RequestSample
from serve.bench.workload import BenchRequest, Workload

ERROR_MAX_CHARS = 500
PREFLIGHT_TIMEOUT_S = 10.0
ClientKind = Literal["http", "sdk"]
CLIENTS: tuple[ClientKind, ...] = ("http", "sdk")
TEXT_FIELDS = ("content", "reasoning", "reasoning_content")
# Open-loop runs have no fixed number of requests in flight: keep this many connections alive.
OPEN_LOOP_KEEPALIVE = 256


class SetupError(Exception):
    """An endpoint cannot be benchmarked at all (unreachable, wrong key, unknown model): one line for the user."""


@dataclass(frozen=True)
class Target:
    """An endpoint as given on the command line; `model` None means the first one it serves."""

    name: str
    base_url: str
    api_key: str
    model: str | None = None


@dataclass(frozen=True)
class EndpointRun:
    samples: list[RequestSample]
    duration_s: float
    client_cpu_s: float  # CPU time of this process (all threads) during the measured run
    warmup_failures: int
    warmup_error: str | None


def root_url(base_url: str) -> str:
    """http://host:port/v1 -> http://host:port (where vLLM serves /health and /version)."""
    parts = urlsplit(base_url)
    path = parts.path.rstrip("/")
    path = path[: -len("/v1")] if path.endswith("/v1") else path
    return f"{parts.scheme}://{parts.netloc}{path}"


def client_for(target: Target, timeout: float) -> AsyncOpenAI:
    return AsyncOpenAI(base_url=target.base_url, api_key=target.api_key, max_retries=0, timeout=timeout)


async def preflight(target: Target) -> tuple[str, str | None]:
    """The model to use and the server's version; raises SetupError with a one-line reason."""
    where = f"{target.name} ({target.base_url})"
    async with client_for(target, PREFLIGHT_TIMEOUT_S) as client:
        try:
            served = [model.id for model in (await client.models.list()).data]
        except openai.AuthenticationError as exc:
            raise SetupError(
                f"{where} rejected the API key (401): pass --api-key or set VLLM_API_KEY"
            ) from exc
        except openai.NotFoundError as exc:
            raise SetupError(
                f"{where} has no /models (404): give the OpenAI API base, usually ending in /v1"
            ) from exc
        except openai.APIStatusError as exc:
            raise SetupError(f"{where} answered /models with {describe_error(exc)}") from exc
        except openai.APIConnectionError as exc:
            raise SetupError(f"cannot reach {where}: {_cause(exc)}") from exc
    if not served:
        raise SetupError(f"{where} serves no models")
    model = target.model or served[0]
    if model not in served:
        raise SetupError(f"{where} does not serve model {model!r}; it serves: {', '.join(served)}")
    return model, await server_version(target.base_url)


async def server_version(base_url: str) -> str | None:
    """vLLM's /version (open without a key); None for servers that have none."""
    try:
        async with httpx.AsyncClient(timeout=PREFLIGHT_TIMEOUT_S) as client:
            response = await client.get(f"{root_url(base_url)}/version")
        return str(response.json()["version"]) if response.status_code == 200 else None
    except (httpx.HTTPError, ValueError, KeyError, TypeError):
        return None


def _cause(exc: BaseException) -> str:
    cause = exc.__cause__
    text = str(cause) if cause is not None and str(cause) else str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def describe_error(exc: BaseException) -> str:
    """One line for a failed request: HTTP status and the server's own message where there is one."""
    if isinstance(exc, openai.APIStatusError):
        body = exc.body
        message = body.get("message") if isinstance(body, dict) else None
        text = f"HTTP {exc.status_code}: {message or exc.message}"
    elif isinstance(exc, openai.APITimeoutError):
        text = "timed out (raise --timeout)"
    elif isinstance(exc, openai.APIConnectionError):
        text = f"connection error: {_cause(exc)}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return _clip(text)


def _has_text(chunk: Any) -> bool:
    if not chunk.choices:
        return False
    delta = chunk.choices[0].delta
    # Thinking models stream their reasoning in a separate field; it is generated output all the same.
    return bool(
        delta.content or getattr(delta, "reasoning", None) or getattr(delta, "reasoning_content", None)
    )


async def send_one(
    client: AsyncOpenAI, model: str, request: BenchRequest, output_tokens: int, run_start: float
) -> RequestSample:
    """Stream one chat completion and time it; failures become samples with `error` set."""
    sent = time.perf_counter()
    text_times: list[float] = []
    usage = None
    try:
        stream = await client.chat.completions.create(
            model=model,
            messages=request.messages(),  # type: ignore[arg-type]
            max_tokens=output_tokens,
            stream=True,
            stream_options={"include_usage": True},
            # A fixed output length makes endpoints comparable: vLLM honours both (other servers may not).
            extra_body={"min_tokens": output_tokens, "ignore_eos": True},
        )
        async for chunk in stream:
            now = time.perf_counter()
            if chunk.usage is not None:
                usage = chunk.usage
            if _has_text(chunk):
                text_times.append(now)
        done = time.perf_counter()
    except Exception as exc:  # any failure of this one request is a data point, not a crash
        return RequestSample(index=request.index, start_s=sent - run_start, error=describe_error(exc))
    return _sample(request.index, sent, run_start, text_times, done, usage)


def _sample(
    index: int, sent: float, run_start: float, text_times: list[float], done: float, usage: Any
) -> RequestSample:
    """A successful stream's sample; `usage` is the usage chunk (an SDK object or a dict) or None."""
    if not text_times:
        return RequestSample(
            index=index, start_s=sent - run_start, error="the stream carried no generated text"
        )
    if isinstance(usage, dict):
        prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    else:
        prompt = usage.prompt_tokens if usage else None
        completion = usage.completion_tokens if usage else None
    return RequestSample(
        index=index,
        start_s=sent - run_start,
        ttft_ms=(text_times[0] - sent) * 1000,
        e2e_ms=(done - sent) * 1000,
        itl_ms=[(b - a) * 1000 for a, b in itertools.pairwise(text_times)],
        prompt_tokens=prompt,
        completion_tokens=completion if completion is not None else len(text_times),
    )


class StreamError(Exception):
    """The server answered with an error status or put an error event into the stream."""


def error_message(status: int | None, body: bytes) -> str:
    """`HTTP 400: <the server's message>` from an OpenAI-style error body (vLLM's, the gateway's)."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    message = None
    if isinstance(parsed, dict):
        inner = parsed.get("error", parsed)
        message = inner.get("message") if isinstance(inner, dict) else inner
    text = str(message) if message else body.decode("utf-8", "replace").strip() or "(empty body)"
    return text if status is None else f"HTTP {status}: {text}"


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= ERROR_MAX_CHARS else text[: ERROR_MAX_CHARS - 1] + "…"


def describe_http_error(exc: BaseException) -> str:
    """One line for a request of the lean client that failed."""
    if isinstance(exc, StreamError):
        return _clip(str(exc))
    if isinstance(exc, httpx.TimeoutException):
        return "timed out (raise --timeout)"
    if isinstance(exc, httpx.TransportError):
        return _clip(f"connection error: {exc or type(exc).__name__}")
    return _clip(f"{type(exc).__name__}: {exc}")


def _event_has_text(event: dict[str, Any]) -> bool:
    choices = event.get("choices")
    if not choices:
        return False
    delta = choices[0].get("delta") or {}
    # Thinking models stream their reasoning in a separate field; it is generated output all the same.
    return any(delta.get(field) for field in TEXT_FIELDS)


async def send_one_http(
    client: httpx.AsyncClient, url: str, index: int, body: bytes, run_start: float
) -> RequestSample:
    """Stream one chat completion whose JSON `body` is ready, and time it; failures become samples.

    Server-sent events are split on blank lines from the raw bytes; every event that arrived in one read
    gets that read's time, as in vLLM's benchmark.
    """
    sent = time.perf_counter()
    text_times: list[float] = []
    usage: Any = None
    try:
        async with client.stream("POST", url, content=body) as response:
            if response.status_code != 200:
                raise StreamError(error_message(response.status_code, await response.aread()))
            pending = b""
            async for data in response.aiter_bytes():
                now = time.perf_counter()
                *events, pending = (pending + data).replace(b"\r\n", b"\n").split(b"\n\n")
                for event in events:
                    payload = event.strip().removeprefix(b"data:").strip()
                    if not payload or payload == b"[DONE]":
                        continue
                    parsed = orjson.loads(payload)
                    if "error" in parsed:
                        raise StreamError(error_message(None, payload))
                    if parsed.get("usage") is not None:
                        usage = parsed["usage"]
                    if _event_has_text(parsed):
                        text_times.append(now)
        done = time.perf_counter()
    except Exception as exc:  # any failure of this one request is a data point, not a crash
        return RequestSample(index=index, start_s=sent - run_start, error=describe_http_error(exc))
    return _sample(index, sent, run_start, text_times, done, usage)


def http_client(target: Target, timeout: float, connections: int) -> httpx.AsyncClient:
    """Kept-alive connections, one per request in flight (httpx's default pool keeps only 20)."""
    return httpx.AsyncClient(
        base_url=target.base_url.rstrip("/") + "/",
        headers={"Authorization": f"Bearer {target.api_key}", "Content-Type": "application/json"},
        timeout=timeout,
        limits=httpx.Limits(max_connections=None, max_keepalive_connections=connections),
    )


async def _closed_loop(
    concurrency: int, requests: Sequence[BenchRequest], send: Callable[[BenchRequest], Any]
) -> list[RequestSample]:
    """`concurrency` workers, each sending its next request as soon as its previous one finished."""
    pending: Iterator[BenchRequest] = iter(requests)
    samples: list[RequestSample] = []

    async def worker() -> None:
        for request in pending:  # one shared iterator: each request is taken exactly once
            samples.append(await send(request))

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(requests)))))
    return samples


async def _open_loop(
    offsets: Sequence[float], requests: Sequence[BenchRequest], send: Callable[[BenchRequest], Any]
) -> list[RequestSample]:
    """Each request sent at its own arrival time, however many are still in flight (Poisson load)."""
    start = time.perf_counter()
    tasks = []
    for offset, request in zip(offsets, requests, strict=True):
        delay = start + offset - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(request)))
    return list(await asyncio.gather(*tasks))


Sender = Callable[[BenchRequest, float], Awaitable[RequestSample]]


@asynccontextmanager
async def sender(
    kind: ClientKind, target: Target, model: str, workload: Workload, timeout: float
) -> AsyncIterator[Sender]:
    """A function that sends one request of `workload` with the chosen client, open for the whole run.

    For the lean client every request's body is serialized here, before any request is timed.
    """
    output_tokens = workload.spec.output_tokens
    if kind == "sdk":
        async with client_for(target, timeout) as sdk:
            yield lambda request, run_start: send_one(sdk, model, request, output_tokens, run_start)
        return
    bodies = {
        request.index: request.body(model, output_tokens)
        for request in (*workload.warmup, *workload.measured)
    }
    connections = workload.spec.concurrency or OPEN_LOOP_KEEPALIVE
    async with http_client(target, timeout, connections) as client:
        yield lambda request, run_start: send_one_http(
            client, "chat/completions", request.index, bodies[request.index], run_start
        )


async def run_endpoint(
    target: Target,
    model: str,
    workload: Workload,
    *,
    timeout: float,
    client: ClientKind = "http",
    on_measuring: Callable[[], None] = lambda: None,
    on_done: Callable[[RequestSample], None] = lambda sample: None,
) -> EndpointRun:
    """Warm up (same connections, own images), then send the measured requests with the workload's
    concurrency or arrival rate; `on_measuring` is called between the two, `on_done` after each request.
    The process's CPU time is read around the measured part: the client's own cost."""
    spec = workload.spec
    async with sender(client, target, model, workload, timeout) as send_request:
        warm_start = time.perf_counter()
        warm = await _closed_loop(
            spec.concurrency or 1, workload.warmup, lambda request: send_request(request, warm_start)
        )
        warm_failed = [s for s in warm if not s.ok]
        on_measuring()
        cpu_start, run_start = time.process_time(), time.perf_counter()

        async def send(request: BenchRequest) -> RequestSample:
            sample = await send_request(request, run_start)
            on_done(sample)
            return sample

        if spec.request_rate is not None:
            samples = await _open_loop(workload.arrival_offsets(), workload.measured, send)
        else:
            samples = await _closed_loop(spec.concurrency or 1, workload.measured, send)
        duration, cpu = time.perf_counter() - run_start, time.process_time() - cpu_start
    return EndpointRun(
        samples=samples,
        duration_s=duration,
        client_cpu_s=cpu,
        warmup_failures=len(warm_failed),
        warmup_error=warm_failed[0].error if warm_failed else None,
    )
