"""Where `serve bench`'s own CPU time goes: cProfile on the bench process, for both clients (`http`, `sdk`).

Run from the repository root:  .venv/bin/python -m benchmarks.client_profile
Writes benchmarks/results/client_profile.json.

One tiny vLLM (`python -m serve up`) serves every run. Per client, `serve bench` runs in this process
twice with the same workload shape (its own seed each time, so no run finds another's images cached):
once plain, for the client CPU time per request it reports itself (`client_cpu_ms_per_request`), and once
under cProfile (deterministic, so it inflates the Python-heavy parts; its shares say where the time goes,
the plain runs say how much there is). The profile's own time is grouped by where the code lives (the
SDK's model building, pydantic, httpx/httpcore/h11, orjson/json, asyncio, rich, the workload's Pillow
work), and the heaviest functions are listed.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import secrets
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS_DIR, command_line, load_average, machine, tiny_server
from serve.bench.metrics import BenchResult
from serve.cli import main as serve_main

CLIENTS = ("http", "sdk")
# First match wins: (label, substrings of the code's file name).
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("openai SDK: chunk -> pydantic objects", ("openai/_models", "openai/_compat", "openai/types")),
    ("openai SDK: SSE decoding, request building", ("openai/",)),
    ("pydantic", ("pydantic",)),
    ("typing / inspect (SDK model construction)", ("typing.py", "inspect.py")),
    ("httpx / httpcore / h11 (HTTP)", ("httpx", "httpcore", "h11")),
    ("JSON (json, orjson)", ("json", "orjson")),
    ("asyncio event loop", ("asyncio", "selectors.py", "select.epoll")),
    ("ssl / sockets", ("ssl", "socket")),
    ("rich (progress bar)", ("rich/",)),
    ("Pillow (workload images)", ("PIL/",)),
    ("serve bench", ("serve/bench",)),
)
IDLE = "method 'poll' of 'select.epoll' objects"  # waiting for the server: not CPU time


def group_of(filename: str, function: str) -> str:
    where = f"{filename}:{function}"
    for label, needles in GROUPS:
        if any(needle in where for needle in needles):
            return label
    return "other (imports, interpreter, builtins)"


def bench_args(base_url: str, client: str, seed: int, args: argparse.Namespace, out: Path) -> list[str]:
    return [
        *("bench", "--endpoint", f"tiny={base_url}", "--client", client),
        *("--requests", str(args.requests), "--concurrency", str(args.concurrency), "--warmup", "2"),
        *("--image-size", args.image_size, "--output-tokens", str(args.output_tokens)),
        *("--seed", str(seed), "--json", str(out)),
    ]


def profile_summary(profile: cProfile.Profile, top: int) -> dict[str, Any]:
    stats = pstats.Stats(profile, stream=io.StringIO())
    groups: dict[str, float] = {}
    functions = []
    busy = idle = 0.0
    for (filename, line, function), (_, calls, tottime, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        if IDLE in function:
            idle += tottime
            continue
        busy += tottime
        label = group_of(filename, function)
        groups[label] = groups.get(label, 0.0) + tottime
        functions.append((tottime, calls, f"{filename.split('site-packages/')[-1]}:{line}({function})"))
    functions.sort(reverse=True)
    return {
        "profiled_busy_s": round(busy, 3),
        "profiled_waiting_in_epoll_s": round(idle, 3),
        "groups_share_of_busy": {
            label: round(seconds / busy, 3) for label, seconds in sorted(groups.items(), key=lambda i: -i[1])
        },
        "top_functions": [
            {"function": name, "calls": calls, "own_s": round(tottime, 3)}
            for tottime, calls, name in functions[:top]
        ],
    }


def bench(argv: list[str]) -> int:
    """`serve bench` in this process, its table not printed (the JSON has the numbers)."""
    with contextlib.redirect_stdout(io.StringIO()):
        return serve_main(argv)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=48)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--image-size", default="512x512")
    parser.add_argument("--output-tokens", type=int, default=64)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    api_key = secrets.token_urlsafe(16)
    started = machine()
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp, tiny_server(Path(tmp), api_key) as base_url:
        os.environ["VLLM_API_KEY"] = api_key
        seed = 100
        for client in CLIENTS:
            seed += 1
            plain = Path(tmp) / f"{client}-plain.json"
            load_before = load_average()
            assert bench(bench_args(base_url, client, seed, args, plain)) == 0
            metrics = BenchResult.model_validate_json(plain.read_text()).endpoints[0]
            seed += 1
            profiled = Path(tmp) / f"{client}-profiled.json"
            profile = cProfile.Profile()
            profile.enable()
            code = bench(bench_args(base_url, client, seed, args, profiled))
            profile.disable()
            assert code == 0
            results[client] = {
                "client_cpu_ms_per_request": round(metrics.client_cpu_ms_per_request or 0, 2),
                "client_cpu_share_of_a_core": round(metrics.client_cpu_share or 0, 3),
                "requests_per_s": round(metrics.requests_per_s, 2),
                "ttft_p50_ms": round(metrics.ttft_ms.p50, 1) if metrics.ttft_ms else None,
                "load_average_before_after": [load_before, load_average()],
                "profile": profile_summary(profile, args.top),
            }
            print(f"{client}: {results[client]['client_cpu_ms_per_request']} ms of client CPU per request")
    ratio = results["sdk"]["client_cpu_ms_per_request"] / results["http"]["client_cpu_ms_per_request"]
    result = {
        "command": command_line("benchmarks.client_profile"),
        "profiler": "cProfile (deterministic; in-process, the whole `serve bench` run incl. workload building)",
        "machine": started,
        "load_average_at_end": load_average(),
        "workload": vars(args),
        "sdk_over_http_client_cpu_per_request": round(ratio, 2),
        "clients": results,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "client_profile.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"sdk / http client CPU per request: {ratio:.2f}")


if __name__ == "__main__":
    main()
