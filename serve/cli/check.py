"""`serve check`: every profile and docker-compose.yml validated together."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from serve.check import run_check
from serve.cli.arguments import add_gpu_options, gpu_survey, settings_environ
from serve.config.profile import ProfileError, default_profiles_dir, profile_paths

NAME = "check"


def register(sub: argparse._SubParsersAction) -> None:
    check = sub.add_parser(
        NAME,
        help="validate every profile and docker-compose.yml together, and that the default set starts on this GPU",
        description="Validates every profile with the SERVE_* overrides of .env and the environment applied, "
        "then docker-compose.yml against the profiles and the page's endpoints; profiles named on the "
        "command line are also checked as instances that run at the same time. On the GPU nvidia-smi reports "
        "(or the one named with --gpu / $SERVE_GPU), the models docker compose up starts (COMPOSE_PROFILES) "
        "must start, and the named ones together.",
        epilog="Examples:\n  serve check\n  serve check 8b 4b-fp8\n  serve check profiles/my.yaml 4b --no-compose\n"
        "  serve check --gpu l4",
    )
    check.add_argument(
        "profiles",
        nargs="*",
        metavar="PROFILE",
        help="profile names or files that will run together (ports, names, GPU shares)",
    )
    check.add_argument(
        "--compose-file",
        type=Path,
        default=Path("docker-compose.yml"),
        metavar="FILE",
        help="the compose file to check (default docker-compose.yml; its .env is the one beside it)",
    )
    check.add_argument(
        "--no-compose", action="store_true", help="check the profiles only (with .env of this folder)"
    )
    add_gpu_options(check)


def run(args: argparse.Namespace, out: Console) -> int:
    profiles_dir = args.profiles_dir or default_profiles_dir()
    if not profile_paths(profiles_dir):
        raise ProfileError(f"{profiles_dir}: no profile files (*.yaml) there; pass --profiles-dir")
    compose = None if args.no_compose else args.compose_file
    if compose is not None and not compose.is_file():
        out.print(f"[red]error:[/] {compose}: no such compose file (pass --compose-file or --no-compose)")
        return 1
    report = run_check(profiles_dir, compose, args.profiles, survey=gpu_survey(args, settings_environ()))
    for line in report.gpu_lines:
        out.print(line, highlight=False, markup=False)
    for profile in report.profiles:
        s = profile.settings
        out.print(
            f"ok  {profile.path}: {s.served_name} on port {s.port}, {s.max_model_len:,} tokens",
            highlight=False,
        )
    for finding in report.warnings:
        out.print(f"[yellow]warning[/] {escape(str(finding))}", highlight=False)
    for finding in report.errors:
        out.print(f"[red]error[/] {escape(str(finding))}", highlight=False)
    if compose is not None and report.ok:
        out.print(f"ok  {compose}: agrees with the profiles", highlight=False)
    out.print(
        "check passed" if report.ok else f"check failed: {len(report.errors)} error(s)", highlight=False
    )
    return 0 if report.ok else 1
