"""Gateway vs direct on the same tiny vLLM: what one more hop costs in TTFT and output throughput.

Run from the repository root:  .venv/bin/python -m benchmarks.gateway_overhead
Writes benchmarks/results/gateway_overhead.json. Targets: TTFT p50 ratio (gateway / direct) <= 1.02 at
concurrency 1, output tokens/s ratio at concurrency 16 >= 0.98.

One `serve up` server; `serve gateway` attached to it (--upstream, as in compose). Both arms run in one
process, interleaved round by round in ABBA order (direct, gateway, gateway, direct, ...), so drift of the
shared machine's load hits both alike. Every request carries a new random 256x256 image (no cache hits) and
asks for a fixed number of tokens (ignore_eos). The client is asyncio + httpx streaming, which keeps up with
the tiny model's ~400 tokens/s many times over; its own cost is the same in both arms.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import io
import json
import os
import random
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

from benchmarks.common import RESULTS_DIR, command_line, load_average, machine, tiny_server
from harness.serve_up import free_port
from harness.tiny_checkpoint import SERVED_NAME, harness_env

TTFT_TARGET = 1.02
THROUGHPUT_TARGET = 0.98


def random_image(rng: random.Random, side: int = 256) -> str:
    image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def chat_body(rng: random.Random, tokens: int) -> dict[str, Any]:
    content = [
        {"type": "image_url", "image_url": {"url": random_image(rng)}},
        {"type": "text", "text": f"Describe picture {rng.random():.6f} in detail."},
    ]
    return {
        "model": SERVED_NAME,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": tokens,
        "min_tokens": tokens,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


async def one_request(client: httpx.AsyncClient, url: str, body: dict[str, Any]) -> tuple[float, int]:
    """(TTFT in s, completion tokens) of one streaming chat request."""
    started = time.perf_counter()
    ttft = None
    tokens = 0
    async with client.stream("POST", url, json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if ttft is None and chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                ttft = time.perf_counter() - started
            if chunk.get("usage"):
                tokens = chunk["usage"]["completion_tokens"]
    assert ttft is not None and tokens, "no tokens streamed"
    return ttft, tokens


async def one_round(
    client: httpx.AsyncClient, url: str, bodies: list[dict[str, Any]], concurrency: int
) -> dict[str, Any]:
    queue = list(bodies)
    results: list[tuple[float, int]] = []

    async def worker() -> None:
        while queue:
            results.append(await one_request(client, url, queue.pop()))

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    return {"ttfts": [r[0] for r in results], "tokens": sum(r[1] for r in results), "wall_s": wall}


async def measure(
    arms: dict[str, str],
    api_key: str,
    *,
    concurrency: int,
    rounds: int,
    per_round: int,
    tokens: int,
    seed: int,
) -> dict[str, Any]:
    """ABBA-interleaved rounds; each round's bodies are generated before the clock starts."""
    rng = random.Random(seed)
    names = list(arms)
    collected: dict[str, dict[str, list[float]]] = {name: {"ttfts": [], "tok_s": []} for name in names}
    headers = {"Authorization": f"Bearer {api_key}"}
    limits = httpx.Limits(max_connections=concurrency * 2)
    async with httpx.AsyncClient(headers=headers, timeout=300, limits=limits) as client:
        for name in names:  # warm-up, unmeasured
            await one_round(
                client, arms[name], [chat_body(rng, tokens) for _ in range(concurrency)], concurrency
            )
        for index in range(rounds):
            order = names if index % 4 in (0, 3) else names[::-1]
            for name in order:
                bodies = [chat_body(rng, tokens) for _ in range(per_round)]
                result = await one_round(client, arms[name], bodies, concurrency)
                collected[name]["ttfts"] += result["ttfts"]
                collected[name]["tok_s"].append(result["tokens"] / result["wall_s"])
    return {
        name: {
            "requests": len(values["ttfts"]),
            "ttft_p50_ms": round(statistics.median(values["ttfts"]) * 1000, 2),
            "ttft_p95_ms": round(statistics.quantiles(values["ttfts"], n=20)[-1] * 1000, 2),
            "output_tokens_per_s": round(statistics.median(values["tok_s"]), 1),
        }
        for name, values in collected.items()
    }


def start_gateway(run_dir: Path, upstream: str, api_key: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    (run_dir / "gw").mkdir()
    (run_dir / "gw" / "secrets.env").write_text(f"VLLM_API_KEY={api_key}\n")
    command = [
        sys.executable, "-m", "serve", "gateway", str(run_dir / "tiny.yaml"),
        "--upstream", f"tiny={upstream}", "--port", str(port),
    ]  # fmt: skip
    env = {**os.environ, **harness_env(cache_dir=run_dir), "VLLM_API_KEY": ""}
    log = (run_dir / "gateway.log").open("wb")
    proc = subprocess.Popen(command, cwd=run_dir / "gw", env=env, stdout=log, stderr=subprocess.STDOUT)
    root = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{root}/health").json()["models"].get(SERVED_NAME) == "running":
                return proc, f"{root}/v1"
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError((run_dir / "gateway.log").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument(
        "--per-round", type=int, default=16, help="requests per round and arm at concurrency 16"
    )
    parser.add_argument(
        "--ttft-requests", type=int, default=8, help="requests per round and arm at concurrency 1"
    )
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "gateway_overhead.json")
    args = parser.parse_args()
    api_key = secrets.token_urlsafe(16)
    info = machine()
    with (
        tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp,
        tiny_server(Path(tmp), api_key) as direct,
    ):
        gateway_proc, via_gateway = start_gateway(Path(tmp), direct, api_key)
        try:
            arms = {"direct": f"{direct}/chat/completions", "gateway": f"{via_gateway}/chat/completions"}
            common = {"rounds": args.rounds, "tokens": args.tokens}
            single = asyncio.run(
                measure(arms, api_key, concurrency=1, per_round=args.ttft_requests, seed=1, **common)
            )
            loaded = asyncio.run(
                measure(arms, api_key, concurrency=16, per_round=args.per_round, seed=2, **common)
            )
        finally:
            gateway_proc.terminate()
            gateway_proc.wait(60)
    ttft_ratio = single["gateway"]["ttft_p50_ms"] / single["direct"]["ttft_p50_ms"]
    throughput_ratio = loaded["gateway"]["output_tokens_per_s"] / loaded["direct"]["output_tokens_per_s"]
    result = {
        "command": command_line("benchmarks.gateway_overhead"),
        "machine": info,
        "load_average_after": load_average(),
        "workload": {
            "image": "random 256x256 PNG, new per request",
            "output_tokens": args.tokens,
            **vars(args),
        }
        | {"out": str(args.out)},
        "concurrency_1": single,
        "concurrency_16": loaded,
        "ttft_p50_ratio_c1": round(ttft_ratio, 4),
        "output_tokens_per_s_ratio_c16": round(throughput_ratio, 4),
        "targets": {"ttft_p50_ratio_max": TTFT_TARGET, "output_tokens_per_s_ratio_min": THROUGHPUT_TARGET},
        "met": {"ttft": ttft_ratio <= TTFT_TARGET, "throughput": throughput_ratio >= THROUGHPUT_TARGET},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: result[k]
                for k in (
                    "concurrency_1",
                    "concurrency_16",
                    "ttft_p50_ratio_c1",
                    "output_tokens_per_s_ratio_c16",
                    "met",
                )
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
