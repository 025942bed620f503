"""The results of `serve bench` as a rich table: one column per endpoint, so they read side by side."""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from serve.bench.metrics import BenchResult, EndpointMetrics, Latency


def _ms(latency: Latency | None, field: str) -> str:
    return "-" if latency is None else f"{getattr(latency, field):,.1f} ms"


def _tokens(value: float | None) -> str:
    return "-" if value is None else f"{value:,.1f}"


def _cpu_ms(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f} ms"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


ROWS: tuple[tuple[str, Callable[[EndpointMetrics], str]], ...] = (
    ("model", lambda m: m.model),
    ("server version", lambda m: m.server_version or "-"),
    ("requests ok / sent", lambda m: f"{m.completed} / {m.requests}"),
    ("TTFT p50", lambda m: _ms(m.ttft_ms, "p50")),
    ("TTFT p95", lambda m: _ms(m.ttft_ms, "p95")),
    ("TTFT p99", lambda m: _ms(m.ttft_ms, "p99")),
    ("ITL mean", lambda m: _ms(m.itl_ms, "mean")),
    ("ITL p50", lambda m: _ms(m.itl_ms, "p50")),
    ("ITL p95", lambda m: _ms(m.itl_ms, "p95")),
    ("e2e latency p50", lambda m: _ms(m.e2e_ms, "p50")),
    ("e2e latency p95", lambda m: _ms(m.e2e_ms, "p95")),
    ("e2e latency p99", lambda m: _ms(m.e2e_ms, "p99")),
    ("output tokens/s", lambda m: f"{m.output_tokens_per_s:,.1f}"),
    ("requests/s", lambda m: f"{m.requests_per_s:,.2f}"),
    ("prompt tokens / request", lambda m: _tokens(m.prompt_tokens_per_request)),
    ("output tokens / request", lambda m: _tokens(m.completion_tokens_per_request)),
    ("duration", lambda m: f"{m.duration_s:,.1f} s"),
    ("client CPU / request", lambda m: _cpu_ms(m.client_cpu_ms_per_request)),
    ("client CPU (of one core)", lambda m: _share(m.client_cpu_share)),
    ("failures", lambda m: str(m.failures)),
)


def results_table(result: BenchResult) -> Table:
    table = Table(
        title=f"serve bench ({result.client} client): {escape(result.workload.describe())}",
        title_justify="left",
    )
    table.add_column("")
    for endpoint in result.endpoints:
        table.add_column(escape(f"{endpoint.name}\n{endpoint.base_url}"), justify="right")
    for label, cell in ROWS:
        table.add_row(label, *(escape(cell(endpoint)) for endpoint in result.endpoints))
    return table


def render_results(out: Console, result: BenchResult) -> None:
    out.print(results_table(result))
    for endpoint in result.endpoints:
        if endpoint.first_error:
            out.print(
                f"[red]{escape(endpoint.name)}: {endpoint.failures} failed[/], first error: "
                f"{escape(endpoint.first_error)}",
                highlight=False,
            )
    for comparison in result.comparisons:
        details = ", ".join(f"{r.metric} {r.ratio:.2f}x" for r in comparison.ratios if r.ratio is not None)
        out.print(
            f"{escape(comparison.summary)}; {escape(comparison.endpoint)}/{escape(comparison.baseline)}: "
            f"{escape(details)}",
            highlight=False,
        )
    for note in result.notes:
        out.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
