"""Command line: `python -m serve check | plan | up | bench`, one module per command."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from types import ModuleType

from rich.console import Console

from serve.cli import bench, check, plan, up
from serve.config.profile import ProfileError
from serve.planner.gpus import UnknownGpuError
from serve.planner.model_facts import UnknownModelError

# Each command module has NAME, register(subparsers) and run(args, out) -> exit code.
COMMANDS: tuple[ModuleType, ...] = (check, plan, up, bench)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m serve", description=__doc__)
    parser.add_argument(
        "--profiles-dir", type=Path, default=None, help="folder of profile files (default: ./profiles)"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for command in COMMANDS:
        command.register(sub)
    return parser


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
    runners = {command.NAME: command.run for command in COMMANDS}
    try:
        return runners[args.command](args, out)
    except (ProfileError, UnknownModelError, UnknownGpuError) as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        return 2
