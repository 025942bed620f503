"""`serve check`: every profile and docker-compose.yml validated together."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from serve.check import run_check
from serve.config.profile import default_profiles_dir

NAME = "check"


def register(sub: argparse._SubParsersAction) -> None:
    check = sub.add_parser(NAME, help="validate every profile and docker-compose.yml together")
    check.add_argument(
        "profiles", nargs="*", help="profiles that will run together (ports, names, GPU shares)"
    )
    check.add_argument("--compose-file", type=Path, default=Path("docker-compose.yml"))
    check.add_argument("--no-compose", action="store_true", help="check the profiles only")


def run(args: argparse.Namespace, out: Console) -> int:
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
