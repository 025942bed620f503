"""Start-up cost of `serve up`: time to ready against vLLM's own entry point started with the same arguments.

Run from the repository root:  .venv/bin/python -m benchmarks.startup [--rounds 5]

Each round starts the tiny checkpoint twice, alternating which goes first:
- direct: `python -m vllm.entrypoints.openai.api_server --config tiny.yaml --host 127.0.0.1 --port P`
  (exactly the command `serve up` builds), ready when /health first answers 200, polled every 0.05 s;
- serve up: `python -m serve up tiny.yaml --port P`, ready when it prints "... is ready at ...". /health is
  polled every 0.05 s here too, to measure how long after /health turned 200 `serve up` reported ready.
Every start gets fresh cache folders (HF_HOME, VLLM_CACHE_ROOT) and a new port; one unmeasured direct start
comes first to warm the OS file cache. Writes benchmarks/results/startup.json and startup.png.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import RESULTS_DIR, command_line, load_average, machine
from harness.serve_up import free_port, processes_with_marker
from harness.tiny_checkpoint import ensure_tiny_checkpoint, harness_env, write_tiny_profile
from serve.config.profile import load_profile
from serve.launcher.vllm_process import VLLM_MODULE, vllm_command

HEALTH_POLL_S = 0.05
READY_MARKER = " is ready at "
START_TIMEOUT_S = 600
TARGET_RATIO = 1.02
TARGET_LAG_S = 0.5


@dataclass
class Start:
    arm: str  # "direct" or "serve up"
    round: int
    health_200_s: float  # launch -> first /health 200
    ready_s: float  # launch -> ready (direct: /health 200; serve up: its ready line)
    vllm_spawned_s: float | None  # launch -> vLLM's API server process exists (serve up's own start-up)

    @property
    def lag_s(self) -> float:
        return self.ready_s - self.health_200_s


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def boot_seconds() -> float:
    """Now, on the clock /proc/PID/stat start times use (seconds since boot)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


def vllm_started_at(marker: str) -> float | None:
    """Since-boot start time of the vLLM API server carrying `marker` (the earliest process running vLLM's
    entry point: its engine workers may share the command line), at 10 ms resolution."""
    starts = []
    for pid in processes_with_marker(marker):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if VLLM_MODULE.encode() in cmdline:
            starts.append(int(stat.rsplit(")", 1)[1].split()[19]) / CLOCK_TICKS)
    return min(starts, default=None)


class HealthPoller(threading.Thread):
    """Polls /health every HEALTH_POLL_S from `started` and records when it first answers 200."""

    def __init__(self, port: int, started: float) -> None:
        super().__init__(daemon=True)
        self.url = f"http://127.0.0.1:{port}/health"
        self.started = started
        self.first_200: float | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=1.0) as client:
            while not self.stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(self.url).status_code == 200:
                        self.first_200 = time.perf_counter() - self.started
                        return
                time.sleep(HEALTH_POLL_S)


def _env(run_dir: Path, marker: str) -> dict[str, str]:
    return {**os.environ, **harness_env(cache_dir=run_dir), "SERVE_TEST_MARKER": marker}


def _stop(proc: subprocess.Popen[bytes], marker: str, *, group: bool) -> None:
    """SIGTERM (the group, for direct vLLM), wait, and make sure nothing this start spawned is left."""
    with contextlib.suppress(ProcessLookupError):
        if group:
            os.killpg(proc.pid, signal.SIGTERM)
        else:
            proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 10
    while processes_with_marker(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    for pid in processes_with_marker(marker):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def start_direct(checkpoint: Path, work: Path, round_: int) -> Start:
    run_dir = work / f"direct-{round_}"
    port = free_port()
    profile = load_profile(write_tiny_profile(run_dir / "tiny.yaml", checkpoint=checkpoint, port=port))
    marker = uuid.uuid4().hex
    with (run_dir / "vllm.log").open("wb") as log:
        started, booted = time.perf_counter(), boot_seconds()
        proc = subprocess.Popen(
            vllm_command(profile, "127.0.0.1", port, []),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_env(run_dir, marker),
            cwd=run_dir,
            start_new_session=True,
        )
    poller = HealthPoller(port, started)
    poller.start()
    try:
        poller.join(START_TIMEOUT_S)
        if poller.first_200 is None:
            raise RuntimeError(f"direct vLLM not healthy after {START_TIMEOUT_S} s, see {run_dir}/vllm.log")
        spawned = vllm_started_at(marker)
    finally:
        poller.stop.set()
        _stop(proc, marker, group=True)
    return Start(
        arm="direct",
        round=round_,
        health_200_s=poller.first_200,
        ready_s=poller.first_200,
        vllm_spawned_s=None if spawned is None else spawned - booted,
    )


def start_serve_up(checkpoint: Path, work: Path, round_: int) -> Start:
    run_dir = work / f"serve-up-{round_}"
    port = free_port()
    profile_path = write_tiny_profile(run_dir / "tiny.yaml", checkpoint=checkpoint, port=port)
    marker = uuid.uuid4().hex
    started, booted = time.perf_counter(), boot_seconds()
    proc = subprocess.Popen(
        [sys.executable, "-m", "serve", "up", str(profile_path), "--log-file", str(run_dir / "vllm.log")],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
        env=_env(run_dir, marker),
        cwd=run_dir,  # like the direct start: nothing of the checkout on sys.path
    )
    poller = HealthPoller(port, started)
    poller.start()
    ready: float | None = None
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # serve up flushes each line it prints
            if READY_MARKER.encode() in line:
                ready = time.perf_counter() - started
                break
        poller.join(5)
        if ready is None or poller.first_200 is None:
            raise RuntimeError(f"serve up did not get ready (exit {proc.poll()}), see {run_dir}/vllm.log")
        spawned = vllm_started_at(marker)
    finally:
        poller.stop.set()
        _stop(proc, marker, group=False)
    return Start(
        arm="serve up",
        round=round_,
        health_200_s=poller.first_200,
        ready_s=ready,
        vllm_spawned_s=None if spawned is None else spawned - booted,
    )


def _median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return round(statistics.median(present), 3) if present else None


def _paired_ratios(starts: list[Start]) -> list[float]:
    """serve up / direct within each round: the two starts of a round share the machine's mood."""
    by_round: dict[int, dict[str, float]] = {}
    for s in starts:
        by_round.setdefault(s.round, {})[s.arm] = s.ready_s
    return [r["serve up"] / r["direct"] for r in by_round.values() if len(r) == 2]


def summary(starts: list[Start]) -> dict[str, Any]:
    direct = [s.ready_s for s in starts if s.arm == "direct"]
    up = [s for s in starts if s.arm == "serve up"]
    ratio = statistics.median(s.ready_s for s in up) / statistics.median(direct)
    lags = [s.lag_s for s in up]
    own = statistics.median((s.vllm_spawned_s or 0.0) + max(s.lag_s, 0.0) for s in up)
    return {
        "direct_median_s": round(statistics.median(direct), 3),
        "serve_up_median_s": round(statistics.median(s.ready_s for s in up), 3),
        "ratio_of_medians": round(ratio, 4),
        "ratio_target": TARGET_RATIO,
        "ratio_ok": ratio <= TARGET_RATIO,
        "serve_up_vllm_health_median_s": round(statistics.median(s.health_200_s for s in up), 3),
        "serve_up_spawns_vllm_after_median_s": _median([s.vllm_spawned_s for s in up]),
        "direct_vllm_health_after_spawn_median_s": _median(
            [
                s.health_200_s - s.vllm_spawned_s
                for s in starts
                if s.arm == "direct" and s.vllm_spawned_s is not None
            ]
        ),
        "serve_up_vllm_health_after_spawn_median_s": _median(
            [s.health_200_s - s.vllm_spawned_s for s in up if s.vllm_spawned_s is not None]
        ),
        "paired_ratio_median": round(statistics.median(_paired_ratios(starts)), 4),
        "lag_after_health_median_s": round(statistics.median(lags), 3),
        # serve up's own cost, measured directly and so free of vLLM's start-up noise: the time before
        # vLLM's process exists plus the time from /health 200 to the ready line, against a direct start.
        "own_overhead_median_s": round(own, 3),
        "own_overhead_ratio": round((statistics.median(direct) + own) / statistics.median(direct), 4),
        "lag_after_health_max_s": round(max(lags), 3),
        "lag_target_s": TARGET_LAG_S,
        "lag_ok": max(lags) <= TARGET_LAG_S,
    }


def chart(starts: list[Start], result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 5.2), layout="constrained")
    for x, arm, colour in ((0, "direct", "#4C72B0"), (1, "serve up", "#DD8452")):
        times = [s.ready_s for s in starts if s.arm == arm]
        left.scatter([x] * len(times), times, color=colour, zorder=3, label=f"{arm} (each round)")
        median = statistics.median(times)
        left.hlines(median, x - 0.25, x + 0.25, color=colour, linewidth=2)
        left.annotate(f"median {median:.2f} s", (x + 0.27, median), va="center", fontsize=9)
    left.set_xticks(
        [0, 1], ["vLLM entry point\n(ready = /health 200)", "python -m serve up\n(ready = its ready line)"]
    )
    left.set_xlim(-0.6, 1.9)
    left.set_ylabel("seconds from launch to ready (lower is better)")
    s = result["summary"]
    left.set_title(
        f"Time to ready: serve up / direct = {s['ratio_of_medians']:.3f} (medians; target ≤ {TARGET_RATIO})\n"
        f"median of the per-round ratios {s['paired_ratio_median']:.3f}; "
        f"serve up's own cost {s['own_overhead_median_s']:.2f} s = {s['own_overhead_ratio']:.3f}"
    )
    left.legend(fontsize=8, loc="lower right")
    up = [st for st in starts if st.arm == "serve up"]
    xs = range(len(up))
    spawn = [st.vllm_spawned_s or 0.0 for st in up]
    right.bar([x - 0.2 for x in xs], spawn, 0.4, color="#8172B3", label="launch -> vLLM process started")
    right.bar(
        [x + 0.2 for x in xs],
        [st.lag_s for st in up],
        0.4,
        color="#DD8452",
        label="/health 200 -> ready line",
    )
    right.axhline(
        TARGET_LAG_S, color="#C44E52", linestyle="--", label=f"target for the lag: {TARGET_LAG_S} s"
    )
    right.set_xticks(list(xs), [f"round {st.round}" for st in up])
    right.set_ylabel("seconds (lower is better)")
    right.set_title("What serve up itself adds, per round")
    right.legend(fontsize=8)
    info = result["machine"]
    fig.suptitle(
        f"serve up start-up overhead, tiny Qwen3-VL on vLLM {info['vllm']} (CPU), {len(up)} rounds each\n"
        f"{info['date'][:10]}, {info['cpus']} CPUs ({info['cpu']}), shared machine: expect noise"
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="starts of each kind (alternating)")
    parser.add_argument("--replot", action="store_true", help="only redraw startup.png from startup.json")
    args = parser.parse_args()
    out_json, out_png = RESULTS_DIR / "startup.json", RESULTS_DIR / "startup.png"
    if args.replot:  # re-derive the summary and the chart from the recorded starts
        saved = json.loads(out_json.read_text())
        starts = [Start(**{k: v for k, v in s.items() if k != "lag_s"}) for s in saved["starts"]]
        saved["summary"] = summary(starts)
        out_json.write_text(json.dumps(saved, indent=2) + "\n")
        chart(starts, saved, out_png)
        return
    info = machine()
    checkpoint = ensure_tiny_checkpoint()
    starts: list[Start] = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        work = Path(tmp)
        warm = start_direct(checkpoint, work, 0)
        print(f"warm-up direct start: {warm.ready_s:.2f} s (not counted)", flush=True)
        for round_ in range(1, args.rounds + 1):
            arms = (start_serve_up, start_direct) if round_ % 2 else (start_direct, start_serve_up)
            for start in arms:
                result = start(checkpoint, work, round_)
                starts.append(result)
                print(
                    f"round {round_} {result.arm:>8}: ready {result.ready_s:6.2f} s, "
                    f"/health 200 at {result.health_200_s:6.2f} s, vLLM spawned at {result.vllm_spawned_s} s",
                    flush=True,
                )
    info["load_average_after"] = load_average()
    result = {
        "command": command_line("benchmarks.startup"),
        "machine": info,
        "health_poll_s": HEALTH_POLL_S,
        "warmup_direct_s": round(warm.ready_s, 3),
        "starts": [{**asdict(s), "lag_s": round(s.lag_s, 3)} for s in starts],
        "summary": summary(starts),
    }
    out_json.write_text(json.dumps(result, indent=2) + "\n")
    chart(starts, result, out_png)
    print(json.dumps(result["summary"], indent=2))


if __name__ == "__main__":
    main()
