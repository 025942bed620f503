"""`serve bench`: the same multimodal workload against OpenAI-compatible endpoints, side by side."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from serve.cli.arguments import count, endpoint, positive_float
from serve.config.secrets import find_secrets

if TYPE_CHECKING:
    from serve.bench.workload import ImageSize

NAME = "bench"
DEFAULT_IMAGE_SIZE = "1024x768"
DEFAULT_VIDEO_SIZE = "640x360"
MAX_VIDEO_FPS = 120


def _image_size(text: str) -> ImageSize:
    from serve.bench.workload import ImageSize  # bench modules load only for `bench`: `up` starts fast

    try:
        return ImageSize.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _video_seconds(text: str) -> float:
    from serve.bench.workload import MAX_VIDEO_SECONDS

    seconds = positive_float(text)
    if seconds > MAX_VIDEO_SECONDS:
        raise argparse.ArgumentTypeError(f"{text!r}: at most {MAX_VIDEO_SECONDS:g} seconds per clip")
    return seconds


def _video_fps(text: str) -> int:
    fps = count(1)(text)
    if fps > MAX_VIDEO_FPS:
        raise argparse.ArgumentTypeError(f"{text!r}: at most {MAX_VIDEO_FPS} frames per second")
    return fps


def register(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser(
        NAME,
        help="benchmark OpenAI-compatible endpoints with the same multimodal workload, side by side",
        description="Sends the same seeded chat requests with images to each endpoint in turn and reports "
        "time to first token, inter-token latency, end-to-end latency and throughput. Exit code 0: all "
        "requests succeeded; 1: some failed; 2: an endpoint could not be used (nothing was measured).",
        epilog="Example:\n"
        "  serve bench --endpoint 8b=http://127.0.0.1:8000/v1 \\\n"
        "    --endpoint 4b=http://127.0.0.1:8001/v1 \\\n"
        "    --concurrency 8 --json bench.json --chart bench.png",
    )
    bench.add_argument(
        "--endpoint",
        dest="endpoints",
        metavar="[NAME=]URL",
        type=endpoint,
        action="append",
        required=True,
        help="OpenAI API base URL (…/v1), repeatable; NAME labels it (default host:port)",
    )
    bench.add_argument(
        "--model", default=None, help="model id to request (default: the first the endpoint lists)"
    )
    bench.add_argument(
        "--api-key",
        default=None,
        metavar="KEY",
        help="default: VLLM_API_KEY (environment, .env, secrets.env), then $OPENAI_API_KEY",
    )
    bench.add_argument(
        "--requests", type=count(1), default=32, metavar="N", help="measured requests per endpoint (32)"
    )
    load = bench.add_mutually_exclusive_group()
    load.add_argument(
        "--concurrency", type=count(1), default=None, metavar="C", help="requests in flight at once (4)"
    )
    load.add_argument(
        "--request-rate",
        type=positive_float,
        default=None,
        metavar="R",
        help="instead: send R requests per second on average (Poisson arrivals, seeded)",
    )
    bench.add_argument(
        "--images-per-request", type=count(0), default=1, metavar="K", help="images per request (1)"
    )
    images = bench.add_mutually_exclusive_group()
    images.add_argument(
        "--image-size",
        type=_image_size,
        default=None,
        metavar="WxH",
        help=f"size of the generated images, new ones for every request (default {DEFAULT_IMAGE_SIZE})",
    )
    images.add_argument(
        "--image-dir", type=Path, default=None, metavar="DIR", help="send the images in DIR instead"
    )
    bench.add_argument(
        "--videos-per-request",
        type=count(0),
        default=0,
        metavar="K",
        help="generated video clips (mp4) per request, new ones for every request (0)",
    )
    bench.add_argument(
        "--video-seconds", type=_video_seconds, default=4.0, metavar="S", help="length of each clip (4)"
    )
    bench.add_argument(
        "--video-size",
        type=_image_size,
        default=None,
        metavar="WxH",
        help=f"frame size of the clips (default {DEFAULT_VIDEO_SIZE})",
    )
    bench.add_argument(
        "--video-fps", type=_video_fps, default=None, metavar="F", help="frame rate of the clips (24)"
    )
    bench.add_argument(
        "--prompt-words", type=count(1), default=64, metavar="N", help="approximate prompt length (64)"
    )
    bench.add_argument(
        "--output-tokens",
        type=count(1),
        default=128,
        metavar="N",
        help="tokens per answer: max_tokens, plus min_tokens and ignore_eos where the server allows (128)",
    )
    bench.add_argument("--seed", type=int, default=0, help="seed of images, prompts and arrivals (0)")
    bench.add_argument(
        "--warmup", type=count(0), default=2, metavar="N", help="unmeasured requests first (2)"
    )
    bench.add_argument(
        "--timeout", type=positive_float, default=300.0, metavar="S", help="seconds per request (300)"
    )
    bench.add_argument(
        "--client",
        choices=("http", "sdk"),
        default="http",
        help="http: httpx + orjson, the least client work per chunk (default); sdk: the OpenAI SDK, what an "
        "SDK user's program sees",
    )
    bench.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the results as JSON")
    bench.add_argument(
        "--swap",
        action="store_true",
        help="time the hot switch through a serve gateway (--endpoint): --requests alternating between its "
        "first two models, --output-tokens each",
    )
    bench.add_argument("--chart", type=Path, default=None, metavar="OUT.png", help="write a comparison chart")


def run(args: argparse.Namespace, out: Console) -> int:
    err = Console(stderr=True, soft_wrap=True)
    try:
        from serve.bench.command import BenchOptions, run_bench
        from serve.bench.runner import Target
        from serve.bench.workload import DEFAULT_VIDEO_FPS, ImageSize, WorkloadSpec
    except ImportError as exc:
        err.print(
            f"error: serve bench needs its extra dependencies (pip install 'qwen3-vl-stack[bench]'): {exc}",
            highlight=False,
            markup=False,
        )
        return 2
    if args.image_dir is not None and not args.image_dir.is_dir():
        err.print(f"error: --image-dir {args.image_dir}: no such folder", highlight=False, markup=False)
        return 2
    vllm_key = find_secrets(Path.cwd()).get("VLLM_API_KEY")
    api_key = (
        args.api_key
        or (vllm_key.value.get_secret_value() if vllm_key else None)
        or os.environ.get("OPENAI_API_KEY")
        or "EMPTY"
    )
    if args.swap:
        from serve.bench.swap import run_swap_bench

        return run_swap_bench(
            args.endpoints[0][1], api_key, rounds=args.requests, tokens=args.output_tokens, json_path=args.json,
            out=out, err=err,
        )  # fmt: skip
    names = [name for name, _ in args.endpoints]
    targets = [
        # The same name twice (e.g. one URL benchmarked twice) gets a suffix, so results stay apart.
        Target(
            name=name if names.count(name) == 1 else f"{name} #{names[:i].count(name) + 1}",
            base_url=url,
            api_key=api_key,
            model=args.model,
        )
        for i, (name, url) in enumerate(args.endpoints)
    ]
    spec = WorkloadSpec(
        requests=args.requests,
        warmup=args.warmup,
        concurrency=None if args.request_rate is not None else (args.concurrency or 4),
        request_rate=args.request_rate,
        images_per_request=args.images_per_request,
        image_size=None
        if args.image_dir is not None
        else (args.image_size or ImageSize.parse(DEFAULT_IMAGE_SIZE)),
        image_dir=str(args.image_dir) if args.image_dir is not None else None,
        videos_per_request=args.videos_per_request,
        video_seconds=args.video_seconds,
        video_size=(args.video_size or ImageSize.parse(DEFAULT_VIDEO_SIZE))
        if args.videos_per_request
        else None,
        video_fps=args.video_fps or DEFAULT_VIDEO_FPS,
        prompt_words=args.prompt_words,
        output_tokens=args.output_tokens,
        seed=args.seed,
    )
    options = BenchOptions(
        targets=targets,
        spec=spec,
        timeout=args.timeout,
        json_out=args.json,
        chart_out=args.chart,
        command=["python", "-m", "serve", *args.argv],
        client=args.client,
    )
    return run_bench(options, out, err)
