"""The image token budget: a 12 MP photo sent at full size vs prepared to the page's default budget.

Run from the repository root:  .venv/bin/python -m benchmarks.token_budget
Writes benchmarks/results/token_budget.json. Target: >= 8x fewer prompt tokens at the budget.

The tiny server's image processor is given the real Qwen3-VL maximum (16,777,216 pixels), so a full-size
photo costs what it would cost the real model; its context is long enough to take one. The two arms
alternate, and every request carries a different photo (vLLM's caches would otherwise answer).
"""

from __future__ import annotations

import argparse
import base64
import json
import secrets
import statistics
import tempfile
from pathlib import Path

import openai

from benchmarks.common import RESULTS_DIR, command_line, first_token_and_prompt, machine, tiny_server
from benchmarks.image_prep import photo_like_jpeg
from frontend.conversation import DEFAULT_IMAGE_TOKEN_BUDGET
from frontend.images import SERVER_MAX_PIXELS, prepare_image
from harness.tiny_checkpoint import SERVED_NAME

TARGET_TOKEN_RATIO = 8.0
MAX_MODEL_LEN = 20480  # one full-size 12 MP photo (~11,800 tokens) and an answer


def ask(client: openai.OpenAI, data_url: str) -> tuple[int, float]:
    """(prompt tokens, time to first token) of one streamed question about the image."""
    media = {"type": "image_url", "image_url": {"url": data_url}}
    return first_token_and_prompt(client, SERVED_NAME, media, "What is in this photo?")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()

    print("generating photos…", flush=True)
    photos = [photo_like_jpeg(seed=5000 + index) for index in range(2 * args.rounds)]
    api_key = secrets.token_urlsafe(16)
    results: dict[str, dict[str, list[float]]] = {
        arm: {"prompt_tokens": [], "ttft_s": []} for arm in ("full size", "budget")
    }
    extra = {"max-model-len": MAX_MODEL_LEN, "limit-mm-per-prompt": {"image": 1, "video": 0}}
    with (
        tempfile.TemporaryDirectory() as work,
        tiny_server(Path(work), api_key, image_max_pixels=SERVER_MAX_PIXELS, extra=extra) as base_url,
    ):
        client = openai.OpenAI(base_url=base_url, api_key=api_key, timeout=600)
        for round_ in range(args.rounds):
            full, small = photos[2 * round_], photos[2 * round_ + 1]
            arms = {
                "full size": "data:image/jpeg;base64," + base64.b64encode(full).decode(),
                "budget": prepare_image(small, "photo.jpg", token_budget=DEFAULT_IMAGE_TOKEN_BUDGET).data_url,
            }
            for arm in sorted(arms, reverse=round_ % 2 == 1):
                tokens, ttft = ask(client, arms[arm])
                results[arm]["prompt_tokens"].append(tokens)
                results[arm]["ttft_s"].append(ttft)
            print(f"\rround {round_ + 1}/{args.rounds}", end="", flush=True)
    print()
    median = {
        arm: {key: statistics.median(values) for key, values in data.items()} for arm, data in results.items()
    }
    token_ratio = median["full size"]["prompt_tokens"] / median["budget"]["prompt_tokens"]
    ttft_ratio = median["full size"]["ttft_s"] / median["budget"]["ttft_s"]
    result = {
        "command": command_line("benchmarks.token_budget"),
        "machine": machine(),
        "rounds": args.rounds,
        "image": "a different 4000x3000 JPEG (q90) per request",
        "server": {"image_max_pixels": SERVER_MAX_PIXELS, "max_model_len": MAX_MODEL_LEN},
        "budget_tokens": DEFAULT_IMAGE_TOKEN_BUDGET,
        "median": median,
        "prompt_token_ratio": round(token_ratio, 2),
        "ttft_ratio": round(ttft_ratio, 1),
        "target_token_ratio": TARGET_TOKEN_RATIO,
        "target_met": token_ratio >= TARGET_TOKEN_RATIO,
        "runs": results,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "token_budget.json").write_text(json.dumps(result, indent=2) + "\n")
    for arm, values in median.items():
        print(f"{arm:>10}: {values['prompt_tokens']:,.0f} prompt tokens, TTFT {values['ttft_s']:.2f} s")
    print(f"{token_ratio:.1f}x fewer prompt tokens, first token {ttft_ratio:.1f}x sooner at the budget")


if __name__ == "__main__":
    main()
