"""`serve bench --chart`: one PNG that compares the endpoints side by side.

Panels: TTFT, inter-token latency and end-to-end latency (grouped bars per statistic), output tokens/s,
requests/s, and the speed-up of every endpoint over the first one. matplotlib runs with the Agg backend,
so it needs no display; it is imported only when a chart is asked for.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

from serve.bench.metrics import BenchResult, EndpointMetrics, Latency

COLOURS = ("#4C72B0", "#DD8452", "#55A868", "#C44E52", "#8172B3", "#937860")


def _colour(i: int) -> str:
    return COLOURS[i % len(COLOURS)]


def _latency_panel(
    ax: Any, endpoints: list[EndpointMetrics], attr: str, stats: tuple[str, ...], title: str
) -> None:
    width = 0.8 / len(endpoints)
    for i, endpoint in enumerate(endpoints):
        latency: Latency | None = getattr(endpoint, attr)
        values = [getattr(latency, s) if latency else 0.0 for s in stats]
        xs = [x + (i - (len(endpoints) - 1) / 2) * width for x in range(len(stats))]
        label = endpoint.name if endpoint.model == endpoint.name else f"{endpoint.name} ({endpoint.model})"
        bars = ax.bar(xs, values, width, label=label, color=_colour(i))
        ax.bar_label(bars, fmt="%.1f", fontsize=7, padding=2)
    ax.set_xticks(range(len(stats)), list(stats))
    ax.set_ylabel("milliseconds (lower is better)")
    ax.set_title(title)
    ax.margins(y=0.15)


def _throughput_panel(
    ax: Any, endpoints: list[EndpointMetrics], attr: str, title: str, unit: str, fmt: str
) -> None:
    names = [e.name for e in endpoints]
    bars = ax.bar(names, [getattr(e, attr) for e in endpoints], color=[_colour(i) for i in range(len(names))])
    ax.bar_label(bars, fmt=fmt, fontsize=8, padding=2)
    ax.set_ylabel(f"{unit} (higher is better)")
    ax.set_title(title)
    ax.margins(y=0.15)
    ax.tick_params(axis="x", labelrotation=10)


def _speedup_panel(ax: Any, result: BenchResult) -> None:
    """Bars grow from 1 on a log axis: 2x faster and 2x slower are equally long, on opposite sides."""
    if not result.comparisons:
        ax.axis("off")
        ax.text(0.5, 0.5, "one endpoint:\nnothing to compare", ha="center", va="center", fontsize=11)
        return
    metrics = [r.metric for r in result.comparisons[0].ratios]
    height = 0.8 / len(result.comparisons)
    extreme = 1.25  # the narrowest axis, even when everything is equal
    for i, comparison in enumerate(result.comparisons, start=1):
        values = [r.speedup or 1.0 for r in comparison.ratios]
        extreme = max(extreme, *values, *(1 / v for v in values))
        ys = [y + (i - 1 - (len(result.comparisons) - 1) / 2) * height for y in range(len(metrics))]
        bars = ax.barh(
            ys, [v - 1 for v in values], height, left=1, color=_colour(i), label=comparison.endpoint
        )
        labels = [
            "n/a" if r.speedup is None else (f"{v:.2f}x faster" if v >= 1 else f"{1 / v:.2f}x slower")
            for r, v in zip(comparison.ratios, values, strict=True)
        ]
        ax.bar_label(bars, labels=labels, fontsize=8, padding=3)
    ax.set_xscale("log")
    ax.set_xlim(1 / extreme**1.8, extreme**1.8)
    ax.axvline(1.0, color="black", linewidth=1)
    ax.set_yticks(range(len(metrics)), metrics)
    ax.invert_yaxis()
    ax.set_xlabel("speed-up (log scale; 1 = same, right of 1 = faster)")
    ax.set_title(f"Compared with {result.comparisons[0].baseline}")
    if len(result.comparisons) > 1:
        ax.legend(fontsize=8)


def write_chart(result: BenchResult, path: Path) -> Path:
    """Render the comparison PNG to `path` and return it."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    endpoints = result.endpoints
    fig, axes = plt.subplots(2, 3, figsize=(16, 9.5), layout="constrained")
    _latency_panel(axes[0][0], endpoints, "ttft_ms", ("p50", "p95", "p99"), "Time to first token")
    _latency_panel(axes[0][1], endpoints, "itl_ms", ("mean", "p50", "p95"), "Inter-token latency")
    _latency_panel(axes[0][2], endpoints, "e2e_ms", ("p50", "p95", "p99"), "End-to-end latency")
    axes[0][0].legend(title="endpoint", fontsize=8)
    _throughput_panel(axes[1][0], endpoints, "output_tokens_per_s", "Output throughput", "tokens/s", "%.1f")
    _throughput_panel(axes[1][1], endpoints, "requests_per_s", "Request throughput", "requests/s", "%.2f")
    _speedup_panel(axes[1][2], result)
    headline = "; ".join(c.summary for c in result.comparisons)
    subtitle = textwrap.fill(result.workload.describe(), 150)
    fig.suptitle(
        f"serve bench {result.timestamp[:16].replace('T', ' ')} UTC"
        + (f": {headline}" if headline else "")
        + f"\n{subtitle}",
        fontsize=12,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
