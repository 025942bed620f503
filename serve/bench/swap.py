"""`serve bench --swap`: the hot switch timed from a client's side, through a running `serve gateway`.

Alternates requests between two models the gateway lists (so, with fewer awake slots than models, every
request after the first needs a swap) and records for each: the gateway's own swap time (X-Serve-Swap-Ms)
and the time to the first token the client saw. Run it on a GPU to measure sleep/wake there; the breakdown
(drain, sleep/stop, wake/start, first token) is in the gateway's log and /metrics.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

import httpx
from pydantic import BaseModel, Field
from rich.console import Console
from rich.progress import Progress
from rich.table import Table

PROMPT = "Say hello in five words."


class SwapSample(BaseModel):
    model: str
    swap_ms: int = Field(description="X-Serve-Swap-Ms: how long the request waited for its model.")
    ttft_ms: float = Field(description="Client-side time to the first token, the wait included.")


class SwapBenchResult(BaseModel):
    gateway: str
    models: list[str]
    samples: list[SwapSample]
    swap_ttft_p50_ms: float | None
    awake_ttft_p50_ms: float | None


def _first_token_ms(client: httpx.Client, base_url: str, model: str, tokens: int) -> SwapSample:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "max_tokens": tokens,
        "stream": True,
    }
    started = time.perf_counter()
    ttft = None
    with client.stream("POST", f"{base_url}/chat/completions", json=body) as response:
        if response.status_code != 200:
            raise RuntimeError(f"{model}: {response.status_code} {response.read().decode()[:300]}")
        swap_ms = int(response.headers.get("x-serve-swap-ms", "0"))
        for line in response.iter_lines():
            if ttft is None and line.startswith("data: ") and '"content":' in line:
                ttft = (time.perf_counter() - started) * 1000
    if ttft is None:
        raise RuntimeError(f"{model}: the stream ended without a token")
    return SwapSample(model=model, swap_ms=swap_ms, ttft_ms=round(ttft, 1))


def _p50(values: list[float]) -> float | None:
    return round(statistics.median(values), 1) if values else None


def run_swap_bench(
    base_url: str,
    api_key: str | None,
    *,
    rounds: int,
    tokens: int,
    json_path: Path | None,
    out: Console,
    err: Console,
) -> int:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    with httpx.Client(headers=headers, timeout=3600) as client:
        listed = client.get(f"{base_url}/models")
        if listed.status_code != 200:
            err.print(
                f"error: {base_url}/models answered {listed.status_code}", highlight=False, markup=False
            )
            return 2
        entries = listed.json()["data"]
        models = [m["id"] for m in entries if m.get("state") != "failed"][:2]
        if len(models) < 2 or "state" not in entries[0]:
            err.print(
                f"error: --swap needs a serve gateway with two working models; {base_url} lists "
                f"{', '.join(m['id'] for m in entries) or 'none'}",
                highlight=False,
                markup=False,
            )
            return 2
        samples = []
        with Progress(console=err, transient=True) as progress:
            task = progress.add_task("swapping", total=rounds)
            for index in range(rounds):
                try:
                    samples.append(_first_token_ms(client, base_url, models[index % 2], tokens))
                except (RuntimeError, httpx.HTTPError) as exc:
                    err.print(f"error: request {index + 1}: {exc}", highlight=False, markup=False)
                    return 1
                progress.advance(task)
    result = SwapBenchResult(
        gateway=base_url,
        models=models,
        samples=samples,
        swap_ttft_p50_ms=_p50([s.ttft_ms for s in samples if s.swap_ms > 0]),
        awake_ttft_p50_ms=_p50([s.ttft_ms for s in samples if s.swap_ms == 0]),
    )
    table = Table("request", "model", "swap (gateway) ms", "first token (client) ms")
    for index, sample in enumerate(samples, 1):
        table.add_row(str(index), sample.model, str(sample.swap_ms), f"{sample.ttft_ms:.1f}")
    out.print(table)
    out.print(
        f"first token p50: {result.swap_ttft_p50_ms} ms after a swap, {result.awake_ttft_p50_ms} ms without",
        highlight=False,
    )
    if json_path is not None:
        json_path.write_text(json.dumps(result.model_dump(), indent=2) + "\n")
    return 0
