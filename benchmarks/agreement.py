"""Does `serve bench` measure what vLLM's own benchmark measures? Both tools on one tiny server, same workload.

Run from the repository root:  .venv/bin/python -m benchmarks.agreement
Writes benchmarks/results/agreement.json (every run's numbers and command) and agreement.png.

One tiny vLLM is started with `python -m serve up` and kept for the whole run. At each concurrency level
(1, 8, 32) the two tools run interleaved A B B A (`--rounds 2` = A B B A, 4 = A B B A A B B A), each run
with a seed of its own so no run finds another's images or prompts in vLLM's caches:

- A: `python -m serve bench` (default client) with one new 256x256 JPEG per request, ~64 prompt words,
  64 output tokens (ignore_eos), one warm-up request;
- B: `vllm bench serve --backend openai-chat --dataset-name random-mm` with one 256x256 image per request
  (its random-pixel JPEG), 64 output tokens, --ignore-eos, and the text length calibrated once at the start
  so that its prompts have as many tokens as A's (measured by the server).

Per run, vLLM's /metrics is read before and after: the deltas of `vllm:time_to_first_token_seconds`
(sum/count: the server's mean TTFT of that run's requests), `vllm:prompt_tokens_total` and
`vllm:request_success_total` are the second witness, the same for both tools. Medians over the runs of
each tool and their ratios (serve bench / vllm bench) are reported; target: requests/s, output tokens/s
and median TTFT within 5 %, prompt tokens within 2 %. The machine is shared: the load average before
and after every run is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx

from benchmarks.common import REPO_ROOT, RESULTS_DIR, command_line, load_average, machine, tiny_server
from harness.tiny_checkpoint import SERVED_NAME, ensure_tiny_checkpoint
from serve.bench.metrics import BenchResult

LEVELS = (1, 8, 32)
IMAGE_SIDE = 256  # the tiny checkpoint's largest image (64 visual tokens): no server-side resize
PROMPT_WORDS = 64
OUTPUT_TOKENS = 64
FIRST_GUESS_INPUT_LEN = 130
TARGETS = {"requests/s": 0.05, "output tokens/s": 0.05, "TTFT p50": 0.05, "prompt tokens": 0.02}
METRIC_LINE = re.compile(r"^(vllm:[a-z_]+)(?:\{([^}]*)\})? ([0-9.e+-]+)$")
WITNESS = (
    "vllm:time_to_first_token_seconds_sum",
    "vllm:time_to_first_token_seconds_count",
    "vllm:prompt_tokens_total",
    "vllm:request_success_total",
)


def server_counters(root_url: str) -> dict[str, float]:
    """The witness counters from vLLM's /metrics, summed over their labels."""
    totals = dict.fromkeys(WITNESS, 0.0)
    for line in httpx.get(f"{root_url}/metrics", timeout=30).text.splitlines():
        match = METRIC_LINE.match(line)
        if match and match.group(1) in totals:
            totals[match.group(1)] += float(match.group(3))
    return totals


def server_witness(before: dict[str, float], after: dict[str, float]) -> dict[str, float | None]:
    delta = {name: after[name] - before[name] for name in WITNESS}
    requests = delta["vllm:time_to_first_token_seconds_count"]
    return {
        "requests": requests,
        "mean_ttft_ms": delta["vllm:time_to_first_token_seconds_sum"] / requests * 1000 if requests else None,
        "prompt_tokens_per_request": (
            delta["vllm:prompt_tokens_total"] / delta["vllm:request_success_total"]
            if delta["vllm:request_success_total"]
            else None
        ),
    }


def serve_bench_command(base_url: str, concurrency: int, requests: int, seed: int, out: Path) -> list[str]:
    return [
        *("python", "-m", "serve", "bench", "--endpoint", f"tiny={base_url}"),
        *("--concurrency", str(concurrency), "--requests", str(requests), "--warmup", "1"),
        *("--image-size", f"{IMAGE_SIDE}x{IMAGE_SIDE}", "--prompt-words", str(PROMPT_WORDS)),
        *("--output-tokens", str(OUTPUT_TOKENS), "--seed", str(seed), "--json", str(out)),
    ]


def vllm_bench_command(
    root_url: str, tokenizer: Path, concurrency: int, requests: int, seed: int, input_len: int, out: Path
) -> list[str]:
    return [
        *("python", "-m", "benchmarks.vllm_bench", "bench", "serve", "--backend", "openai-chat"),
        *("--base-url", root_url, "--endpoint", "/v1/chat/completions"),
        *("--model", SERVED_NAME, "--tokenizer", str(tokenizer), "--dataset-name", "random-mm"),
        *("--random-mm-base-items-per-request", "1", "--random-mm-num-mm-items-range-ratio", "0"),
        *("--random-mm-limit-mm-per-prompt", '{"image": 1, "video": 0}'),
        *("--random-mm-bucket-config", f"{{({IMAGE_SIDE}, {IMAGE_SIDE}, 1): 1.0}}"),
        *("--random-input-len", str(input_len), "--random-range-ratio", "0"),
        *("--random-output-len", str(OUTPUT_TOKENS), "--ignore-eos"),
        *("--num-prompts", str(requests), "--max-concurrency", str(concurrency), "--seed", str(seed)),
        *("--disable-tqdm", "--save-result", "--result-dir", str(out.parent), "--result-filename", out.name),
    ]


def run_tool(tool: str, command: list[str], out: Path, root_url: str, api_key: str) -> dict[str, Any]:
    """One run of either tool; its numbers in one shape, plus the server's witness and the load."""
    env = {**os.environ, "VLLM_API_KEY": api_key, "OPENAI_API_KEY": api_key}
    load_before, counters = load_average(), server_counters(root_url)
    print(f"$ {shlex.join(command)}", file=sys.stderr, flush=True)
    subprocess.run(
        [sys.executable, *command[1:]],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    witness = server_witness(counters, server_counters(root_url))
    if tool == "serve bench":
        endpoint = BenchResult.model_validate_json(out.read_text()).endpoints[0]
        assert endpoint.failures == 0 and endpoint.ttft_ms is not None, endpoint.first_error
        numbers = {
            "requests/s": endpoint.requests_per_s,
            "output tokens/s": endpoint.output_tokens_per_s,
            "TTFT p50": endpoint.ttft_ms.p50,
            "TTFT mean": endpoint.ttft_ms.mean,
            "prompt tokens": endpoint.prompt_tokens_per_request,
            "client CPU share": endpoint.client_cpu_share,
            "client CPU ms/request": endpoint.client_cpu_ms_per_request,
        }
    else:
        data = json.loads(out.read_text())
        assert data["failed"] == 0, data
        numbers = {
            "requests/s": data["request_throughput"],
            "output tokens/s": data["output_throughput"],
            "TTFT p50": data["median_ttft_ms"],
            "TTFT mean": data["mean_ttft_ms"],
            "prompt tokens": data["total_input_tokens"] / data["completed"],
        }
    return {
        "tool": tool,
        "command": command,
        **numbers,
        "server": witness,
        "load_average_before": load_before,
        "load_average_after": load_average(),
    }


def calibrate_input_len(
    base_url: str, root_url: str, api_key: str, tokenizer: Path, work: Path
) -> dict[str, Any]:
    """vLLM's --random-input-len that gives its prompts as many tokens as serve bench's (by the server)."""
    ours = run_tool(
        "serve bench",
        serve_bench_command(base_url, 8, 8, 999, work / "calibrate-serve.json"),
        work / "calibrate-serve.json",
        root_url,
        api_key,
    )
    theirs = run_tool(
        "vllm bench",
        vllm_bench_command(
            root_url, tokenizer, 8, 8, 998, FIRST_GUESS_INPUT_LEN, work / "calibrate-vllm.json"
        ),
        work / "calibrate-vllm.json",
        root_url,
        api_key,
    )
    ours_tokens, theirs_tokens = ours["prompt tokens"], theirs["prompt tokens"]
    input_len = FIRST_GUESS_INPUT_LEN + round(ours_tokens - theirs_tokens)
    return {
        "first_guess_input_len": FIRST_GUESS_INPUT_LEN,
        "serve_bench_prompt_tokens": ours_tokens,
        "vllm_bench_prompt_tokens_at_first_guess": theirs_tokens,
        "random_input_len": input_len,
    }


def requests_for(concurrency: int, args: argparse.Namespace) -> int:
    """Enough requests that the closed loop is full most of the run."""
    return max(args.requests, 4 * concurrency)


def summarize_level(runs: list[dict[str, Any]]) -> dict[str, Any]:
    medians: dict[str, dict[str, float]] = {}
    for tool in ("serve bench", "vllm bench"):
        mine = [run for run in runs if run["tool"] == tool]
        medians[tool] = {
            metric: statistics.median(run[metric] for run in mine)
            for metric in ("requests/s", "output tokens/s", "TTFT p50", "TTFT mean", "prompt tokens")
        }
        medians[tool]["server mean TTFT"] = statistics.median(run["server"]["mean_ttft_ms"] for run in mine)
        medians[tool]["server prompt tokens"] = statistics.median(
            run["server"]["prompt_tokens_per_request"] for run in mine
        )
    ours, theirs = medians["serve bench"], medians["vllm bench"]
    ratios = {metric: ours[metric] / theirs[metric] for metric in ours}
    # Runs k of both tools are neighbours (A B B A): their ratio cancels slow drifts of the machine's load.
    pairs = list(
        zip(
            [run for run in runs if run["tool"] == "serve bench"],
            [run for run in runs if run["tool"] == "vllm bench"],
            strict=True,
        )
    )
    paired = {
        metric: statistics.median(a[metric] / b[metric] for a, b in pairs)
        for metric in ("requests/s", "output tokens/s", "TTFT p50", "prompt tokens")
    }
    within = {metric: abs(ratios[metric] - 1) <= tolerance for metric, tolerance in TARGETS.items()}
    client_vs_server = {
        tool: medians[tool]["TTFT mean"] / medians[tool]["server mean TTFT"] for tool in medians
    }
    cpu = [run["client CPU share"] for run in runs if run["tool"] == "serve bench"]
    return {
        "medians": medians,
        "ratios_serve_over_vllm": ratios,
        "paired_ratio_medians": paired,
        "within_target": within,
        "client_mean_ttft_over_server_mean_ttft": client_vs_server,
        "serve_bench_client_cpu_share_median": statistics.median(cpu),
        "load_average_range": [
            min(run["load_average_before"][0] for run in runs),
            max(run["load_average_after"][0] for run in runs),
        ],
    }


def write_chart(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    metrics = [*TARGETS, "server mean TTFT"]
    levels = result["levels"]
    fig, ax = plt.subplots(figsize=(11, 5.5), layout="constrained")
    width = 0.8 / len(levels)
    for i, level in enumerate(levels):
        values = [level["ratios_serve_over_vllm"][m] for m in metrics]
        xs = [x + (i - (len(levels) - 1) / 2) * width for x in range(len(metrics))]
        bars = ax.bar(xs, values, width, label=f"concurrency {level['concurrency']}")
        ax.bar_label(bars, fmt="%.3f", fontsize=8, padding=2)
    ax.axhspan(0.95, 1.05, color="green", alpha=0.12, label="±5 % target")
    ax.axhspan(0.98, 1.02, color="green", alpha=0.15, label="±2 % (prompt tokens)")
    ax.axhline(1.0, color="black", linewidth=1)
    ax.set_xticks(range(len(metrics)), metrics)
    ax.set_ylabel("serve bench / vllm bench serve (medians over runs)")
    low = min(min(level["ratios_serve_over_vllm"][m] for m in metrics) for level in levels)
    high = max(max(level["ratios_serve_over_vllm"][m] for m in metrics) for level in levels)
    ax.set_ylim(min(0.85, low - 0.03), max(1.15, high + 0.03))
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title(
        f"serve bench vs vllm bench serve on one tiny server, {result['rounds']} runs per tool and level, "
        f"interleaved A B B A\n{result['workload']}",
        fontsize=10,
    )
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4, help="runs per tool and level (A B B A ...)")
    parser.add_argument("--requests", type=int, default=48, help="requests per run (at least 4 x level)")
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    parser.add_argument(
        "--replot", action="store_true", help="recompute the statistics and the chart from the JSON's runs"
    )
    args = parser.parse_args()
    out_json, out_png = RESULTS_DIR / "agreement.json", RESULTS_DIR / "agreement.png"
    if args.replot:  # the statistics again from the recorded runs, then the chart
        result = json.loads(out_json.read_text())
        for level in result["levels"]:
            level.update(summarize_level(level["runs"]))
        out_json.write_text(json.dumps(result, indent=2) + "\n")
        write_chart(result, out_png)
        return
    api_key = secrets.token_urlsafe(16)
    tokenizer = ensure_tiny_checkpoint()
    started = machine()
    with tempfile.TemporaryDirectory() as tmp, tiny_server(Path(tmp), api_key) as base_url:
        work = Path(tmp)
        root_url = base_url.removesuffix("/v1")
        calibration = calibrate_input_len(base_url, root_url, api_key, tokenizer, work)
        print(f"calibration: {calibration}", file=sys.stderr)
        levels = []
        seed = 1000
        for concurrency in args.levels:
            runs = []
            requests = requests_for(concurrency, args)
            for round_ in range(args.rounds):
                order = ("serve bench", "vllm bench") if round_ % 2 == 0 else ("vllm bench", "serve bench")
                for tool in order:
                    seed += 1
                    out = work / f"c{concurrency}-{seed}.json"
                    command = (
                        serve_bench_command(base_url, concurrency, requests, seed, out)
                        if tool == "serve bench"
                        else vllm_bench_command(
                            root_url,
                            tokenizer,
                            concurrency,
                            requests,
                            seed,
                            calibration["random_input_len"],
                            out,
                        )
                    )
                    runs.append(run_tool(tool, command, out, root_url, api_key))
                    print(
                        f"c={concurrency} {tool}: {runs[-1]['requests/s']:.2f} req/s, "
                        f"TTFT p50 {runs[-1]['TTFT p50']:.1f} ms",
                        file=sys.stderr,
                    )
            levels.append(
                {"concurrency": concurrency, "requests": requests, **summarize_level(runs), "runs": runs}
            )
    result = {
        "command": command_line("benchmarks.agreement"),
        "machine": started,
        "load_average_at_end": load_average(),
        "rounds": args.rounds,
        "workload": (
            f"one new {IMAGE_SIDE}x{IMAGE_SIDE} image per request, ~{PROMPT_WORDS} prompt words "
            f"(vLLM: calibrated random tokens), {OUTPUT_TOKENS} output tokens with ignore_eos"
        ),
        "targets": TARGETS,
        "calibration": calibration,
        "levels": levels,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    # Paths of the temporary run folder mean nothing later: keep the file names only.
    text = json.dumps(result, indent=2).replace(f"{tmp}/", "")
    out_json.write_text(text + "\n")
    write_chart(result, out_png)
    for level in levels:
        ratios = ", ".join(f"{m} {r:.3f}" for m, r in level["ratios_serve_over_vllm"].items())
        print(f"concurrency {level['concurrency']}: {ratios}; within target: {level['within_target']}")


if __name__ == "__main__":
    main()
