"""The gateway's own Prometheus metrics (requests, queue depth, in flight, swaps and their durations), in a
registry of its own so /metrics shows the gateway, not the process's defaults."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

SWAP_BUCKETS = (0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)
CONTENT_TYPE = CONTENT_TYPE_LATEST


class GatewayMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "serve_gateway_requests",
            "Completions answered, by model and HTTP status.",
            ["model", "status"],
            registry=self.registry,
        )
        self.queue_depth = Gauge(
            "serve_gateway_queue_depth",
            "Requests waiting for their model to be swapped in.",
            ["model"],
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "serve_gateway_in_flight",
            "Requests being answered by the model.",
            ["model"],
            registry=self.registry,
        )
        self.awake = Gauge(
            "serve_gateway_model_awake",
            "1 while the model is awake (running).",
            ["model"],
            registry=self.registry,
        )
        self.swaps = Counter(
            "serve_gateway_swaps",
            "Swaps that brought a model in, by mode and outcome.",
            ["model", "mode", "outcome"],
            registry=self.registry,
        )
        self.swap_seconds = Histogram(
            "serve_gateway_swap_seconds",
            "Duration of each swap phase (drain, put_away, bring_up, total).",
            ["phase"],
            buckets=SWAP_BUCKETS,
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
