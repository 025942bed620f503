"""Concurrency scaling on one tiny vLLM server: `python -m serve bench` at 1, 2, 4, ... 32 requests in flight.

Run from the repository root:  .venv/bin/python -m benchmarks.concurrency
Writes benchmarks/results/concurrency.json (one row per level, with the exact bench command of each),
the full `serve bench` JSON of every level under benchmarks/results/concurrency/, and concurrency.png.
Each level uses its own seed, so no level finds a previous level's images in vLLM's caches.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import REPO_ROOT, RESULTS_DIR, command_line, load_average, machine, tiny_server
from serve.bench.metrics import BenchResult

LEVELS = (1, 2, 4, 8, 16, 32)


def bench_command(base_url: str, concurrency: int, args: argparse.Namespace, out: Path) -> list[str]:
    return [
        "python",
        "-m",
        "serve",
        "bench",
        "--endpoint",
        f"tiny={base_url}",
        "--concurrency",
        str(concurrency),
        "--requests",
        str(args.requests),
        "--warmup",
        str(min(concurrency, 8)),
        "--image-size",
        args.image_size,
        "--prompt-words",
        "64",
        "--output-tokens",
        str(args.output_tokens),
        "--seed",
        str(concurrency),
        "--json",
        str(out.relative_to(REPO_ROOT)),
    ]


def run_level(base_url: str, api_key: str, concurrency: int, args: argparse.Namespace) -> dict[str, Any]:
    out = RESULTS_DIR / "concurrency" / f"c{concurrency:02d}.json"
    command = bench_command(base_url, concurrency, args, out)
    env = {**os.environ, "VLLM_API_KEY": api_key}
    print(f"$ {shlex.join(command)}", flush=True)
    subprocess.run([sys.executable, *command[1:]], cwd=REPO_ROOT, env=env, check=True, stdout=sys.stderr)
    metrics = BenchResult.model_validate_json(out.read_text()).endpoints[0]
    assert metrics.ttft_ms is not None and metrics.e2e_ms is not None and metrics.itl_ms is not None
    return {
        "concurrency": concurrency,
        "command": shlex.join(command),
        "output_tokens_per_s": round(metrics.output_tokens_per_s, 1),
        "requests_per_s": round(metrics.requests_per_s, 2),
        "ttft_p50_ms": round(metrics.ttft_ms.p50, 1),
        "ttft_p95_ms": round(metrics.ttft_ms.p95, 1),
        "itl_mean_ms": round(metrics.itl_ms.mean, 2),
        "e2e_p50_ms": round(metrics.e2e_ms.p50, 1),
        "e2e_p95_ms": round(metrics.e2e_ms.p95, 1),
        "prompt_tokens_per_request": metrics.prompt_tokens_per_request,
        "output_tokens": args.output_tokens,
        "failures": metrics.failures,
    }


def chart(rows: list[dict[str, Any]], info: dict[str, Any], requests: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    levels = [row["concurrency"] for row in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), layout="constrained")
    # Every answer has the same length, so requests/s is output tokens/s scaled: one line, both labelled.
    left.plot(levels, [r["output_tokens_per_s"] for r in rows], "o-", color="#4C72B0")
    for row in rows:
        left.annotate(
            f"{row['requests_per_s']:.1f} req/s",
            (row["concurrency"], row["output_tokens_per_s"]),
            textcoords="offset points",
            xytext=(0, 8),
            ha="center",
            fontsize=8,
        )
    left.set_ylabel("output tokens/s (higher is better)")
    left.set_ylim(bottom=0, top=max(r["output_tokens_per_s"] for r in rows) * 1.15)
    left.set_title(f"Throughput ({rows[0]['output_tokens']} output tokens per request)")
    right.plot(levels, [r["ttft_p50_ms"] for r in rows], "o-", color="#55A868", label="TTFT p50")
    right.plot(levels, [r["ttft_p95_ms"] for r in rows], "s-", color="#C44E52", label="TTFT p95")
    right.set_ylabel("milliseconds (lower is better)")
    right.set_ylim(bottom=0)
    right.set_title("Time to first token")
    right.legend()
    for ax in (left, right):
        ax.set_xscale("log", base=2)
        ax.set_xticks(levels, [str(level) for level in levels])
        ax.set_xlabel("concurrency (requests in flight)")
        ax.grid(alpha=0.3)
        ax.margins(x=0.08)
    fig.suptitle(
        f"Tiny Qwen3-VL on vLLM {info['vllm']} (CPU): serve bench, {requests} requests per level\n"
        f"{info['date'][:10]}, {info['cpus']} CPUs ({info['cpu']}), shared machine: expect noise"
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=128, help="measured requests per level")
    parser.add_argument("--output-tokens", type=int, default=32)
    parser.add_argument("--image-size", default="256x256")
    parser.add_argument(
        "--replot", action="store_true", help="only redraw concurrency.png from concurrency.json"
    )
    args = parser.parse_args()
    if args.replot:
        saved = json.loads((RESULTS_DIR / "concurrency.json").read_text())
        chart(saved["levels"], saved["machine"], saved["requests"], RESULTS_DIR / "concurrency.png")
        return
    api_key = secrets.token_urlsafe(16)
    info = machine()
    with (
        tempfile.TemporaryDirectory(prefix="bench-concurrency-") as tmp,
        tiny_server(Path(tmp), api_key) as url,
    ):
        rows = [run_level(url, api_key, level, args) for level in LEVELS]
    info["load_average_after"] = load_average()
    result = {
        "command": command_line("benchmarks.concurrency"),
        "machine": info,
        "requests": args.requests,
        "levels": rows,
    }
    (RESULTS_DIR / "concurrency.json").write_text(json.dumps(result, indent=2) + "\n")
    chart(rows, info, args.requests, RESULTS_DIR / "concurrency.png")
    for row in rows:
        print(
            f"concurrency {row['concurrency']:>2}: {row['output_tokens_per_s']:>7.1f} tok/s, "
            f"{row['requests_per_s']:>6.2f} req/s, TTFT p95 {row['ttft_p95_ms']:>7.1f} ms"
        )


if __name__ == "__main__":
    main()
