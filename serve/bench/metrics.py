"""What a benchmark run measured: per-request samples, per-endpoint statistics, endpoint comparisons.

The models are also the `--json` document, so every field says what it means and in which unit.
Percentiles interpolate linearly between the two nearest samples (numpy's default), so results agree with
what a reader recomputes from the per-request samples.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence

from pydantic import BaseModel, Field

from serve.bench.workload import WorkloadSpec


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) with linear interpolation; raises ValueError on no values."""
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


class Latency(BaseModel):
    """Distribution of one latency over the successful requests, in milliseconds."""

    mean: float = Field(description="arithmetic mean, ms")
    p50: float = Field(description="median, ms")
    p95: float = Field(description="95th percentile, ms")
    p99: float = Field(description="99th percentile, ms")
    count: int = Field(description="number of values the statistics are computed from")

    @classmethod
    def of(cls, values: Sequence[float]) -> Latency | None:
        if not values:
            return None
        return cls(
            mean=statistics.fmean(values),
            p50=percentile(values, 50),
            p95=percentile(values, 95),
            p99=percentile(values, 99),
            count=len(values),
        )


class RequestSample(BaseModel):
    """One measured request as the client saw it."""

    index: int = Field(description="position in the workload (warm-up requests come first)")
    start_s: float = Field(description="when it was sent, seconds after the endpoint's run started")
    ttft_ms: float | None = Field(default=None, description="time to the first generated text, ms")
    e2e_ms: float | None = Field(default=None, description="time to the last chunk of the stream, ms")
    itl_ms: list[float] = Field(
        default_factory=list,
        exclude=True,  # can be large; the statistics are in the endpoint's itl_ms
        description="gaps between successive chunks that carried text, ms",
    )
    prompt_tokens: int | None = Field(default=None, description="usage.prompt_tokens (images included)")
    completion_tokens: int | None = Field(default=None, description="usage.completion_tokens")
    error: str | None = Field(default=None, description="why the request failed; None when it succeeded")

    @property
    def ok(self) -> bool:
        return self.error is None


class EndpointMetrics(BaseModel):
    """Everything measured on one endpoint."""

    name: str = Field(description="the endpoint's label (NAME in --endpoint NAME=URL, else host:port)")
    base_url: str = Field(description="the OpenAI API base URL (…/v1)")
    model: str = Field(description="model id the requests named")
    server_version: str | None = Field(default=None, description="what the server's /version said, if any")
    requests: int = Field(description="measured requests sent")
    completed: int = Field(description="requests that finished without an error")
    failures: int = Field(description="requests that failed")
    first_error: str | None = Field(default=None, description="message of the first failure")
    duration_s: float = Field(description="wall time from the first request sent to the last one finished, s")
    ttft_ms: Latency | None = Field(description="time to first token")
    itl_ms: Latency | None = Field(description="inter-token latency: gaps between text chunks, all pooled")
    e2e_ms: Latency | None = Field(description="end-to-end request latency")
    output_tokens_per_s: float = Field(description="completion tokens of all successful requests / duration")
    requests_per_s: float = Field(description="successful requests / duration")
    prompt_tokens_per_request: float | None = Field(
        description="mean usage.prompt_tokens per successful request, images included"
    )
    completion_tokens_per_request: float | None = Field(
        description="mean usage.completion_tokens per successful request"
    )
    client_cpu_s: float | None = Field(
        default=None, description="CPU time the benchmark process (all its threads) used while measuring, s"
    )
    client_cpu_ms_per_request: float | None = Field(
        default=None, description="client_cpu_s per measured request, ms: the client's own cost"
    )
    client_cpu_share: float | None = Field(
        default=None,
        description="client_cpu_s / duration_s: the share of one CPU core the client kept busy (1 = a whole core)",
    )
    samples: list[RequestSample] = Field(description="every measured request, in the order they were sent")


def summarize(
    *,
    name: str,
    base_url: str,
    model: str,
    samples: Sequence[RequestSample],
    duration_s: float,
    server_version: str | None = None,
    client_cpu_s: float | None = None,
) -> EndpointMetrics:
    """Statistics of one endpoint's run; failed requests count only as failures."""
    ok = [s for s in samples if s.ok]
    failed = [s for s in samples if not s.ok]
    prompt = [s.prompt_tokens for s in ok if s.prompt_tokens is not None]
    completion = [s.completion_tokens for s in ok if s.completion_tokens is not None]
    duration = max(duration_s, 1e-9)
    return EndpointMetrics(
        name=name,
        base_url=base_url,
        model=model,
        server_version=server_version,
        requests=len(samples),
        completed=len(ok),
        failures=len(failed),
        first_error=failed[0].error if failed else None,
        duration_s=duration_s,
        ttft_ms=Latency.of([s.ttft_ms for s in ok if s.ttft_ms is not None]),
        itl_ms=Latency.of([gap for s in ok for gap in s.itl_ms]),
        e2e_ms=Latency.of([s.e2e_ms for s in ok if s.e2e_ms is not None]),
        output_tokens_per_s=sum(completion) / duration,
        requests_per_s=len(ok) / duration,
        prompt_tokens_per_request=statistics.fmean(prompt) if prompt else None,
        completion_tokens_per_request=statistics.fmean(completion) if completion else None,
        client_cpu_s=client_cpu_s,
        client_cpu_ms_per_request=None
        if client_cpu_s is None
        else client_cpu_s * 1000 / max(len(samples), 1),
        client_cpu_share=None if client_cpu_s is None else client_cpu_s / duration,
        samples=sorted(samples, key=lambda s: (s.start_s, s.index)),
    )


# What a comparison looks at: (attribute path, label, True when higher is better).
COMPARED: tuple[tuple[str, str, bool], ...] = (
    ("output_tokens_per_s", "output tokens/s", True),
    ("requests_per_s", "requests/s", True),
    ("ttft_ms.p50", "TTFT p50", False),
    ("itl_ms.mean", "ITL mean", False),
    ("e2e_ms.p50", "e2e latency p50", False),
)


def metric_value(metrics: EndpointMetrics, path: str) -> float | None:
    value: object = metrics
    for part in path.split("."):
        value = getattr(value, part, None)
        if value is None:
            return None
    return float(value)  # type: ignore[arg-type]


class Ratio(BaseModel):
    """One metric of an endpoint divided by the same metric of the baseline."""

    metric: str = Field(description="which metric (label)")
    ratio: float | None = Field(description="endpoint / baseline; None when either is missing or zero")
    higher_is_better: bool = Field(description="True for throughputs, False for latencies")
    speedup: float | None = Field(description="how many times faster the endpoint is (>1) or slower (<1)")


class Comparison(BaseModel):
    """An endpoint against the first endpoint of the run."""

    endpoint: str = Field(description="name of the endpoint compared")
    baseline: str = Field(description="name of the first endpoint")
    ratios: list[Ratio] = Field(description="endpoint / baseline for each compared metric")
    summary: str = Field(description="one sentence, e.g. '4b is 1.60x faster than 8b (output tokens/s)'")


def compare(endpoint: EndpointMetrics, baseline: EndpointMetrics) -> Comparison:
    ratios = []
    for path, label, higher_is_better in COMPARED:
        mine, theirs = metric_value(endpoint, path), metric_value(baseline, path)
        ratio = mine / theirs if mine and theirs else None
        speedup = None if ratio is None else (ratio if higher_is_better else 1 / ratio)
        ratios.append(Ratio(metric=label, ratio=ratio, higher_is_better=higher_is_better, speedup=speedup))
    return Comparison(
        endpoint=endpoint.name,
        baseline=baseline.name,
        ratios=ratios,
        summary=speed_phrase(endpoint.name, baseline.name, ratios[0]),
    )


def speed_phrase(name: str, baseline: str, ratio: Ratio) -> str:
    if ratio.speedup is None:
        return f"{name} vs {baseline}: no {ratio.metric} to compare"
    if ratio.speedup >= 1:
        return f"{name} is {ratio.speedup:.2f}x faster than {baseline} ({ratio.metric})"
    return f"{name} is {1 / ratio.speedup:.2f}x slower than {baseline} ({ratio.metric})"


class Versions(BaseModel):
    python: str = Field(description="Python of the benchmark client")
    serve: str = Field(description="version of this project (qwen3-vl-stack)")
    openai: str = Field(description="OpenAI SDK (the client with --client sdk)")
    httpx: str | None = Field(default=None, description="httpx (the default client's HTTP library)")
    orjson: str | None = Field(default=None, description="orjson (the default client's JSON parser)")


class BenchResult(BaseModel):
    """The `--json` document of `python -m serve bench`."""

    timestamp: str = Field(description="when the run started, ISO 8601 UTC")
    command: list[str] = Field(description="the command line (any --api-key value replaced by ***)")
    machine: str = Field(description="where the client ran: platform and CPU count")
    versions: Versions = Field(description="client-side versions; server versions are per endpoint")
    client: str = Field(
        default="sdk", description="'http' (httpx + orjson, the default) or 'sdk' (the OpenAI SDK)"
    )
    workload: WorkloadSpec = Field(description="what every endpoint was asked to do")
    notes: list[str] = Field(default_factory=list, description="warnings about the run, e.g. reused images")
    endpoints: list[EndpointMetrics] = Field(description="results per endpoint, in the order benchmarked")
    comparisons: list[Comparison] = Field(description="endpoints[1:] each against endpoints[0]")
