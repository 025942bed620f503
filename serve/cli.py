"""Command line: `python -m serve check | plan | up`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console

from serve.check import run_check
from serve.gpus import GPUS, Gpu, UnknownGpuError, find_gpu
from serve.launcher import UpOptions, run_up
from serve.model_facts import UnknownModelError, model_facts
from serve.plan import TogetherPlan, plan_profile, plan_together
from serve.plan_report import render_plan
from serve.profile import Profile, ProfileError, default_profiles_dir, load_profile, resolve_profile_path


def _positive_gib(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 10_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a memory size in GiB, e.g. 24 or 79.6")
    return value


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


COMMANDS = {"check": cmd_check, "plan": cmd_plan, "up": cmd_up}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # argparse cannot hold both options after a positional and a free tail, so split at "--" first.
    extra = argv[argv.index("--") + 1 :] if "--" in argv else []
    args = _parser().parse_args(argv[: len(argv) - len(extra) - 1] if "--" in argv else argv)
    args.vllm_args = extra
    # Wide enough for the plan table when piped (rich assumes 80 columns without a terminal).
    out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
    err = Console(stderr=True, soft_wrap=True)
    try:
        return COMMANDS[args.command](args, out)
    except (ProfileError, UnknownModelError, UnknownGpuError) as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        return 2
