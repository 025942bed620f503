"""Command line: `python -m serve check | plan | up | bench`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from rich.console import Console

from serve.check import run_check
from serve.gpus import GPUS, Gpu, UnknownGpuError, find_gpu
from serve.launcher import UpOptions, run_up
from serve.model_facts import UnknownModelError, model_facts
from serve.plan import TogetherPlan, plan_profile, plan_together
from serve.plan_report import render_plan
from serve.profile import Profile, ProfileError, default_profiles_dir, load_profile, resolve_profile_path

if TYPE_CHECKING:
    from serve.bench_workload import ImageSize


def _positive_gib(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 10_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a memory size in GiB, e.g. 24 or 79.6")
    return value


DEFAULT_IMAGE_SIZE = "1024x768"


def _count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= {minimum}")
        return value

    return parse


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def _image_size(text: str) -> ImageSize:
    from serve.bench_workload import ImageSize  # bench modules load only for `bench`: `up` starts fast

    try:
        return ImageSize.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _endpoint(text: str) -> tuple[str, str]:
    """NAME=URL or URL -> (name, url); the name defaults to host:port."""
    name, _, url = text.partition("=") if "=" in text.split("://", 1)[0] else ("", "", text)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not [NAME=]URL with an http(s) URL of the API, e.g. 8b=http://127.0.0.1:8000/v1"
        )
    if parts.username or parts.password:
        raise argparse.ArgumentTypeError(
            f"{parts.hostname}: credentials in the URL would be written to the results; pass --api-key instead"
        )
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: the port is not a number 1-65535") from None
    return name.strip() or f"{parts.hostname}:{port}", url.rstrip("/")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m serve", description=__doc__)
    parser.add_argument(
        "--profiles-dir", type=Path, default=None, help="folder of profile files (default: ./profiles)"
    )
    sub = parser.add_subparsers(dest="command", required=True)

    check = sub.add_parser("check", help="validate every profile and docker-compose.yml together")
    check.add_argument(
        "profiles", nargs="*", help="profiles that will run together (ports, names, GPU shares)"
    )
    check.add_argument("--compose-file", type=Path, default=Path("docker-compose.yml"))
    check.add_argument("--no-compose", action="store_true", help="check the profiles only")

    plan = sub.add_parser("plan", help="GPU memory plan: weights, KV cache, what fits")
    plan.add_argument("profiles", nargs="+", help="profile names (8b, 4b-fp8) or files; several = one GPU")
    gpu = plan.add_mutually_exclusive_group()
    gpu.add_argument("--gpu", default="h100", help=f"GPU kind ({', '.join(GPUS)}); default h100")
    gpu.add_argument(
        "--gpu-memory-gib", type=_positive_gib, help="total memory of one GPU in GiB, instead of --gpu"
    )
    plan.add_argument("--json", action="store_true", help="print one JSON object")

    up = sub.add_parser("up", help="start vLLM with a profile on this machine and wait until it is ready")
    up.add_argument("profile", help="profile name (8b) or a profile file")
    up.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)"
    )
    up.add_argument("--port", type=int, default=None, help="port (default: the profile's)")
    up.add_argument(
        "--log-file", type=Path, default=None, help="where vLLM's output goes (default: a temp file)"
    )
    up.add_argument("--verbose", action="store_true", help="also print vLLM's output")
    up.add_argument(
        "--ready-timeout", type=float, default=3600.0, help="seconds to wait (first downloads are slow)"
    )
    up.epilog = "Anything after -- goes to vLLM as is: python -m serve up 8b -- --max-num-seqs 16"

    bench = sub.add_parser(
        "bench",
        help="benchmark OpenAI-compatible endpoints with the same multimodal workload, side by side",
        description="Sends the same seeded chat requests with images to each endpoint in turn and reports "
        "time to first token, inter-token latency, end-to-end latency and throughput. Exit code 0: all "
        "requests succeeded; 1: some failed; 2: an endpoint could not be used (nothing was measured).",
        epilog="Example: python -m serve bench --endpoint 8b=http://127.0.0.1:8000/v1 "
        "--endpoint 4b=http://127.0.0.1:8001/v1 --concurrency 8 --json bench.json --chart bench.png",
    )
    bench.add_argument(
        "--endpoint",
        dest="endpoints",
        metavar="[NAME=]URL",
        type=_endpoint,
        action="append",
        required=True,
        help="OpenAI API base URL (…/v1), repeatable; NAME labels it (default host:port)",
    )
    bench.add_argument(
        "--model", default=None, help="model id to request (default: the first the endpoint lists)"
    )
    bench.add_argument(
        "--api-key", default=None, metavar="KEY", help="default: $VLLM_API_KEY, then $OPENAI_API_KEY"
    )
    bench.add_argument(
        "--requests", type=_count(1), default=32, metavar="N", help="measured requests per endpoint (32)"
    )
    load = bench.add_mutually_exclusive_group()
    load.add_argument(
        "--concurrency", type=_count(1), default=None, metavar="C", help="requests in flight at once (4)"
    )
    load.add_argument(
        "--request-rate",
        type=_positive_float,
        default=None,
        metavar="R",
        help="instead: send R requests per second on average (Poisson arrivals, seeded)",
    )
    bench.add_argument(
        "--images-per-request", type=_count(0), default=1, metavar="K", help="images per request (1)"
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
        "--prompt-words", type=_count(1), default=64, metavar="N", help="approximate prompt length (64)"
    )
    bench.add_argument(
        "--output-tokens",
        type=_count(1),
        default=128,
        metavar="N",
        help="tokens per answer: max_tokens, plus min_tokens and ignore_eos where the server allows (128)",
    )
    bench.add_argument("--seed", type=int, default=0, help="seed of images, prompts and arrivals (0)")
    bench.add_argument(
        "--warmup", type=_count(0), default=2, metavar="N", help="unmeasured requests first (2)"
    )
    bench.add_argument(
        "--timeout", type=_positive_float, default=300.0, metavar="S", help="seconds per request (300)"
    )
    bench.add_argument("--json", type=Path, default=None, metavar="OUT", help="write the results as JSON")
    bench.add_argument("--chart", type=Path, default=None, metavar="OUT.png", help="write a comparison chart")
    return parser


def _load(name_or_file: str, profiles_dir: Path | None) -> Profile:
    return load_profile(resolve_profile_path(name_or_file, profiles_dir))


def _gpu(args: argparse.Namespace) -> Gpu:
    if args.gpu_memory_gib:
        return Gpu(
            key="custom",
            label=f"{args.gpu_memory_gib:g} GiB GPU",
            memory_gib=args.gpu_memory_gib,
            bandwidth_tb_s=0,
        )
    return find_gpu(args.gpu)


def cmd_plan(args: argparse.Namespace, out: Console) -> int:
    gpu = _gpu(args)
    plans = []
    for name in args.profiles:
        profile = _load(name, args.profiles_dir)
        plans.append(plan_profile(profile, model_facts(profile.settings.model), gpu))
    together: TogetherPlan | None = plan_together(plans) if len(plans) > 1 else None
    if args.json:
        if together is None:
            print(plans[0].model_dump_json(indent=2))
        else:
            print(
                json.dumps(
                    {"profiles": [p.model_dump() for p in plans], "together": together.model_dump()}, indent=2
                )
            )
    else:
        render_plan(out, plans, together)
    return 0 if all(p.fits for p in plans) and (together is None or together.fits) else 1


def cmd_check(args: argparse.Namespace, out: Console) -> int:
    profiles_dir = args.profiles_dir or default_profiles_dir()
    compose = None if args.no_compose else args.compose_file
    if compose is not None and not compose.is_file():
        out.print(f"[red]error:[/] {compose}: no such compose file (pass --compose-file or --no-compose)")
        return 1
    report = run_check(profiles_dir, compose, args.profiles)
    for profile in report.profiles:
        s = profile.settings
        out.print(
            f"ok  {profile.path}: {s.served_name} on port {s.port}, {s.max_model_len:,} tokens",
            highlight=False,
        )
    for finding in report.warnings:
        out.print(f"[yellow]warning[/] {finding}", highlight=False)
    for finding in report.errors:
        out.print(f"[red]error[/] {finding}", highlight=False)
    if compose is not None and report.ok:
        out.print(f"ok  {compose}: agrees with the profiles", highlight=False)
    out.print(
        "check passed" if report.ok else f"check failed: {len(report.errors)} error(s)", highlight=False
    )
    return 0 if report.ok else 1


def cmd_up(args: argparse.Namespace, out: Console) -> int:
    profile = _load(args.profile, args.profiles_dir)
    options = UpOptions(
        host=args.host,
        port=args.port,
        log_file=args.log_file,
        verbose=args.verbose,
        ready_timeout=args.ready_timeout,
        extra_args=args.vllm_args,
    )
    return run_up(profile, options, Console(stderr=True, soft_wrap=True), out)


def cmd_bench(args: argparse.Namespace, out: Console) -> int:
    err = Console(stderr=True, soft_wrap=True)
    try:
        from serve.bench import BenchOptions, run_bench
        from serve.bench_runner import Target
        from serve.bench_workload import ImageSize, WorkloadSpec
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
    api_key = args.api_key or os.environ.get("VLLM_API_KEY") or os.environ.get("OPENAI_API_KEY") or "EMPTY"
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
    )
    return run_bench(options, out, err)


COMMANDS = {"check": cmd_check, "plan": cmd_plan, "up": cmd_up, "bench": cmd_bench}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # argparse cannot hold both options after a positional and a free tail, so split at "--" first.
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = _parser().parse_args(argv[: len(argv) - len(extra) - 1] if "--" in argv else argv)
    args.vllm_args = extra
    args.argv = argv
    # Wide enough for the plan table when piped (rich assumes 80 columns without a terminal).
    out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
    err = Console(stderr=True, soft_wrap=True)
    try:
        return COMMANDS[args.command](args, out)
    except (ProfileError, UnknownModelError, UnknownGpuError) as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        return 2
