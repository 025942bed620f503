"""What the page's client code adds to time to first token, against the bare OpenAI SDK, on one tiny server.

Run from the repository root:  .venv/bin/python -m benchmarks.client_overhead
Writes benchmarks/results/client_overhead.json. Target: TTFT ratio <= 1.03.

Three arms, interleaved round by round (the order rotates each round), each request with its own image
so vLLM's prefix and multimodal caches never answer for the model:
- sdk: the bare OpenAI SDK (one long-lived client) streaming an already-prepared request;
- page client: the page's AnswerJob (request + streaming + stats + reasoning split) with the same kind of
  already-prepared request;
- page client + prep: the whole turn as the page does it, from the uploaded 12 MP JPEG: prepare_image,
  build_request, AnswerJob.
"""

from __future__ import annotations

import argparse
import json
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import openai
from pydantic import SecretStr

from benchmarks.common import RESULTS_DIR, command_line, machine, tiny_server
from benchmarks.image_prep import photo_like_jpeg
from frontend.answer_stream import AnswerJob, Target
from frontend.chat_request import ChatRequest, build_request
from frontend.conversation import Answer, GenerationSettings, ImageAttachment, Message
from frontend.images import prepare_image
from frontend.settings import Endpoint
from harness.tiny_checkpoint import IMAGE_LIMIT, SERVED_NAME

TARGET_RATIO = 1.03
QUESTION = "Describe this photo in detail."
SETTINGS = GenerationSettings(max_tokens=16)


class EmptyAnswer(Exception):
    """The random tiny model ended its answer before a first visible token: nothing to time."""


def until_answered(arm: Callable[[], float], attempts: int = 5) -> float:
    """Ask again (with the arm's next image) when the answer came back empty; same rule for every arm."""
    for _ in range(attempts - 1):
        try:
            return arm()
        except EmptyAnswer:
            continue
    return arm()


def _request(image: ImageAttachment) -> ChatRequest:
    history = [Message(role="user", text=QUESTION, images=[image])]
    return build_request(history, SETTINGS, endpoint="tiny", image_limit=IMAGE_LIMIT)


def sdk_ttft(client: openai.OpenAI, request: ChatRequest) -> float:
    started = time.perf_counter()
    first: float | None = None
    stream = client.chat.completions.create(
        model=SERVED_NAME,
        messages=request.messages,
        temperature=SETTINGS.temperature,
        top_p=SETTINGS.top_p,
        max_tokens=SETTINGS.max_tokens,
        stream=True,
        stream_options={"include_usage": True},
    )
    for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter() - started
    if first is None:
        raise EmptyAnswer
    return first


def page_ttft(target: Target, request: ChatRequest, *, started: float | None = None) -> float:
    """TTFT of the page's AnswerJob, run in this thread; `started` moves the clock's start earlier."""
    job_started = time.perf_counter()
    job = AnswerJob(target=target, request=request, settings=SETTINGS, answer=Answer(endpoint="tiny"))
    job.run()
    if job.answer.error:
        raise RuntimeError(job.answer.error)
    if job.answer.stats.time_to_first_token_s is None:
        raise EmptyAnswer
    return job_started - (started or job_started) + job.answer.stats.time_to_first_token_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    args = parser.parse_args()

    print("generating photos…", flush=True)
    # Enough for every arm and round, warm-up and a few re-asks after empty answers.
    photos = [photo_like_jpeg(seed=1000 + index) for index in range(4 * args.rounds + 12)]
    api_key = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory() as work, tiny_server(Path(work), api_key) as base_url:
        target = Target(
            endpoint=Endpoint(name="tiny", base_url=base_url, image_limit=IMAGE_LIMIT),
            api_key=SecretStr(api_key),
            model=SERVED_NAME,
        )
        client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
        photo_iter = iter(photos)

        def prepared() -> ImageAttachment:
            return prepare_image(next(photo_iter), "photo.jpg")

        def whole_turn() -> float:
            started = time.perf_counter()
            return page_ttft(target, _request(prepare_image(next(photo_iter), "photo.jpg")), started=started)

        # The prepared arms get their image before their clock starts; the whole turn prepares it on the clock.
        arms: dict[str, Callable[[], float]] = {
            "sdk": lambda: sdk_ttft(client, _request(prepared())),
            "page client": lambda: page_ttft(target, _request(prepared())),
            "page client + prep": whole_turn,
        }
        names = list(arms)
        for name in names:  # warm-up, not measured
            until_answered(arms[name])
        ttft: dict[str, list[float]] = {name: [] for name in names}
        for round_ in range(args.rounds):
            order = names[round_ % 3 :] + names[: round_ % 3]
            for name in order:
                ttft[name].append(until_answered(arms[name]))
            print(f"\rround {round_ + 1}/{args.rounds}", end="", flush=True)
    print()
    medians = {name: statistics.median(values) for name, values in ttft.items()}
    ratios = {
        "page client / sdk": medians["page client"] / medians["sdk"],
        "page client + prep / sdk": medians["page client + prep"] / medians["sdk"],
    }
    result = {
        "command": command_line("benchmarks.client_overhead"),
        "machine": machine(),
        "rounds": args.rounds,
        "image": "a different 4000x3000 JPEG (q90) per request, prepared to 1312x960 (1230 tokens)",
        "median_ttft_s": {name: round(value, 4) for name, value in medians.items()},
        "ratios": {name: round(value, 3) for name, value in ratios.items()},
        "target_ratio": TARGET_RATIO,
        "ttft_s": {name: [round(value, 4) for value in values] for name, values in ttft.items()},
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "client_overhead.json").write_text(json.dumps(result, indent=2) + "\n")
    for name, value in medians.items():
        print(f"{name:>20}: median TTFT {value * 1000:.1f} ms")
    for name, value in ratios.items():
        print(f"{name:>26}: {value:.3f} (target <= {TARGET_RATIO})")


if __name__ == "__main__":
    main()
