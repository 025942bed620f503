"""`serve up`: start vLLM with a profile on this machine, placed on its GPU, and wait until it is ready."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from serve.cli.arguments import (
    add_gpu_options,
    bind_address,
    gpu_survey,
    load,
    port_number,
    positive_float,
    settings_environ,
)
from serve.config.secrets import find_secrets
from serve.launcher.up import UpOptions, command_line, run_up
from serve.planner.resolve import loader, resolve, stack_with, start_report

NAME = "up"


def register(sub: argparse._SubParsersAction) -> None:
    up = sub.add_parser(
        NAME,
        help="start vLLM with a profile on this machine and wait until it is ready",
        description="Places the instance on this machine's GPUs (which GPU, its share, its context; the same "
        "placement as serve plan and the compose entrypoint) and says so in one line, or refuses before "
        "anything is downloaded. Then starts vLLM with the profile as its config file plus the SERVE_* "
        "overrides and the resolved values, shows its progress, waits until it answers, then prints the base "
        "URL and an OpenAI SDK snippet.\n"
        "VLLM_API_KEY and HF_TOKEN come from the environment, else .env, else secrets.env.",
        epilog="Anything after -- goes to vLLM as is:\n  serve up 8b -- --max-num-seqs 16",
    )
    up.add_argument("profile", help="profile name (8b) or a profile file")
    up.add_argument(
        "--host",
        type=bind_address,
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1: this machine only; 0.0.0.0 or :: for every interface)",
    )
    up.add_argument("--port", type=port_number, default=None, help="port (default: the profile's)")
    up.add_argument(
        "--log-file", type=Path, default=None, help="where vLLM's output goes (default: a temp file)"
    )
    up.add_argument("--verbose", action="store_true", help="also print vLLM's output")
    up.add_argument(
        "--ready-timeout",
        type=positive_float,
        default=3600.0,
        metavar="S",
        help="seconds to wait for vLLM to be ready (default 3600: first downloads are slow)",
    )
    up.add_argument(
        "--dry-run",
        action="store_true",
        help="print the vLLM command line it would run (exit 0), or why it would not start (exit 1); "
        "start nothing",
    )
    add_gpu_options(up)


def run(args: argparse.Namespace, out: Console) -> int:
    environ = settings_environ()
    profile = load(args.profile, args.profiles_dir, environ)
    if args.log_file is not None and args.log_file.is_dir():
        raise IsADirectoryError(21, "is a folder; --log-file takes a file name", str(args.log_file))
    resolution = resolve(
        stack_with(profile, args.profiles_dir, environ),
        gpu_survey(args, environ),
        starting=profile.name,
        load=loader(args.profiles_dir, environ),
        unknown_models_pass=True,
    )
    console = Console(stderr=True, soft_wrap=True)
    lines, starts = start_report(resolution, profile.name)
    for line in lines:
        console.print(f"[serve] {line}", highlight=False, markup=False)
    if not starts:
        return 1
    options = UpOptions(
        host=args.host,
        port=args.port,
        log_file=args.log_file,
        verbose=args.verbose,
        ready_timeout=args.ready_timeout,
        extra_args=args.vllm_args,
        secrets=find_secrets(Path.cwd()),
        placed=resolution.placement.instance(profile.name) if resolution.placement else None,
    )
    if args.dry_run:
        print(command_line(profile, options))
        return 0
    return run_up(profile, options, console, out)
