"""The video budget: prompt tokens and time to first token against clip length and resolution, with the
profiles' video settings vs vLLM's defaults, on the tiny Qwen3-VL.

Run from the repository root:  .venv/bin/python -m benchmarks.video_budget
Writes benchmarks/results/video_budget.json. Target: a long high-resolution clip costs at most the
profile's budget (+ its timestamps) and its first token comes >= 4x sooner than at vLLM's defaults.

Two tiny servers, one after the other, each with a 20,480-token context: "profile" runs the video settings
of profiles/8b.yaml (media-io-kwargs and videos_kwargs), "vLLM defaults" samples at vLLM's 2 fps up to 768
frames within a pixel budget of 16,384 tokens (what fits the context; the real checkpoints allow more).
Raw clips (what any API client may send) are written by OpenCV at 10 fps; every request carries a clip of
its own (vLLM's caches would otherwise answer).
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import statistics
import tempfile
from pathlib import Path
from typing import Any

import openai
import yaml
from rich.progress import Progress

from benchmarks.common import (
    RESULTS_DIR,
    command_line,
    first_token_and_prompt,
    load_average,
    machine,
    tiny_server,
)
from harness.serve_up import REPO_ROOT
from harness.tiny_checkpoint import SERVED_NAME
from harness.video_clips import write_clip

MAX_MODEL_LEN = 20480
UNCAPPED_TOKENS = 16384
CLIPS = [(seconds, size) for seconds in (4, 16, 64) for size in ((320, 240), (1280, 720))]
SOURCE_FPS = 10
TARGET_TTFT_RATIO = 4.0


def profile_video_settings() -> dict[str, Any]:
    """The video keys of profiles/8b.yaml, as the tiny server's profile overrides."""
    raw = yaml.safe_load((REPO_ROOT / "profiles" / "8b.yaml").read_text())
    return {
        "media-io-kwargs": raw["media-io-kwargs"],
        "mm-processor-kwargs": {"videos_kwargs": raw["mm-processor-kwargs"]["videos_kwargs"]},
    }


ARMS: dict[str, dict[str, Any]] = {
    "profile": profile_video_settings(),
    "vLLM defaults": {
        "media-io-kwargs": {"video": {"fps": 2, "max_frames": 768}},
        "mm-processor-kwargs": {
            "videos_kwargs": {"size": {"longest_edge": UNCAPPED_TOKENS * 2048, "shortest_edge": 4096}}
        },
    },
}


def ask(client: openai.OpenAI, clip: bytes) -> tuple[int, float]:
    """(prompt tokens, time to first token) of one streamed question about the clip."""
    url = "data:video/mp4;base64," + base64.b64encode(clip).decode()
    media = {"type": "video_url", "video_url": {"url": url}}
    return first_token_and_prompt(client, SERVED_NAME, media, "What happens in this clip?")


def clip_name(seconds: int, size: tuple[int, int]) -> str:
    return f"{seconds} s {size[0]}x{size[1]}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    api_key = secrets.token_urlsafe(16)
    runs: dict[str, dict[str, dict[str, list[float]]]] = {}
    load_before = load_average()
    with tempfile.TemporaryDirectory() as work, Progress() as progress:
        work_dir = Path(work)
        for arm, video_keys in ARMS.items():
            task = progress.add_task(f"{arm}: starting the server", total=len(CLIPS) * args.rounds)
            extra = {
                "max-model-len": MAX_MODEL_LEN,
                "limit-mm-per-prompt": {"image": 1, "video": 1},
                **video_keys,
            }
            run_dir = work_dir / arm.replace(" ", "-")
            run_dir.mkdir()
            with tiny_server(run_dir, api_key, extra=extra) as base_url:
                client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=900)
                text_only = ask_text(client)
                results = runs.setdefault(arm, {})
                for round_ in range(args.rounds):
                    for seconds, (width, height) in CLIPS:
                        name = clip_name(seconds, (width, height))
                        progress.update(task, description=f"{arm}: {name}")
                        path = work_dir / f"{arm}-{round_}-{seconds}-{width}.mp4"
                        clip = write_clip(
                            path,
                            seconds=seconds,
                            fps=SOURCE_FPS,
                            width=width,
                            height=height,
                            offset=round_ * 3,
                        ).read_bytes()
                        path.unlink()
                        tokens, ttft = ask(client, clip)
                        entry = results.setdefault(name, {"video_tokens": [], "ttft_s": [], "clip_mb": []})
                        entry["video_tokens"].append(tokens - text_only)
                        entry["ttft_s"].append(ttft)
                        entry["clip_mb"].append(round(len(clip) / 1e6, 2))
                        progress.advance(task)
    median = {
        arm: {
            name: {key: statistics.median(values) for key, values in data.items()}
            for name, data in clips.items()
        }
        for arm, clips in runs.items()
    }
    ratios = {
        name: {
            "tokens": round(
                median["vLLM defaults"][name]["video_tokens"] / median["profile"][name]["video_tokens"], 2
            ),
            "ttft": round(median["vLLM defaults"][name]["ttft_s"] / median["profile"][name]["ttft_s"], 2),
        }
        for name in median["profile"]
    }
    longest = clip_name(*CLIPS[-1])
    budget = ARMS["profile"]["mm-processor-kwargs"]["videos_kwargs"]["size"]["longest_edge"] // 2048
    result = {
        "command": command_line("benchmarks.video_budget"),
        "machine": {**machine(), "load_average_before": load_before},
        "rounds": args.rounds,
        "clips": f"OpenCV mp4v at {SOURCE_FPS} fps, a new clip per request",
        "server": {"max_model_len": MAX_MODEL_LEN, "arms": ARMS},
        "profile_video_budget_tokens": budget,
        "median": median,
        "ratio_defaults_over_profile": ratios,
        "target": f"{longest}: within the budget (+ timestamps) and TTFT >= {TARGET_TTFT_RATIO}x sooner",
        "target_met": median["profile"][longest]["video_tokens"] <= budget * 1.15
        and ratios[longest]["ttft"] >= TARGET_TTFT_RATIO,
        "runs": runs,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "video_budget.json").write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'clip':>18} | {'profile tokens':>14} {'TTFT':>7} | {'defaults tokens':>15} {'TTFT':>7} | ratio")
    for name in median["profile"]:
        p, d = median["profile"][name], median["vLLM defaults"][name]
        print(
            f"{name:>18} | {p['video_tokens']:>14,.0f} {p['ttft_s']:>6.2f}s | {d['video_tokens']:>15,.0f} "
            f"{d['ttft_s']:>6.2f}s | {ratios[name]['tokens']:.1f}x tokens, {ratios[name]['ttft']:.1f}x TTFT"
        )


def ask_text(client: openai.OpenAI) -> int:
    """Prompt tokens of the same question without the clip (subtracted to get the video's cost)."""
    response = client.chat.completions.create(
        model=SERVED_NAME,
        messages=[{"role": "user", "content": [{"type": "text", "text": "What happens in this clip?"}]}],
        max_tokens=1,
    )
    return response.usage.prompt_tokens


if __name__ == "__main__":
    main()
