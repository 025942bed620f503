"""`serve up`: start vLLM with a profile on this machine and wait until it is ready."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from serve.cli.arguments import load
from serve.launcher.up import UpOptions, run_up

NAME = "up"


def register(sub: argparse._SubParsersAction) -> None:
    up = sub.add_parser(NAME, help="start vLLM with a profile on this machine and wait until it is ready")
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


def run(args: argparse.Namespace, out: Console) -> int:
    profile = load(args.profile, args.profiles_dir)
    options = UpOptions(
        host=args.host,
        port=args.port,
        log_file=args.log_file,
        verbose=args.verbose,
        ready_timeout=args.ready_timeout,
        extra_args=args.vllm_args,
    )
    return run_up(profile, options, Console(stderr=True, soft_wrap=True), out)
