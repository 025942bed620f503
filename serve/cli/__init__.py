"""Command line: serve check | plan | up | gateway | bench | profiles | status | k8s, one module per command.

Shared behaviour lives here and in serve.cli.arguments: the global options (accepted before or after the
command), help that keeps its line breaks, and one place that turns every user mistake into a message.
"""

from __future__ import annotations

import argparse
import os
import sys
from types import ModuleType

from rich.console import Console

from serve.cli import bench, check, gateway, k8s, plan, profiles, status, up
from serve.cli.arguments import HelpFormatter, add_global_options, program_name
from serve.compose.interpolation import ComposeError
from serve.config.profile import ProfileError
from serve.planner.gpus import UnknownGpuError
from serve.planner.model_facts import UnknownModelError

# Each command module has NAME, register(subparsers) and run(args, out) -> exit code.
COMMANDS: tuple[ModuleType, ...] = (check, plan, up, gateway, bench, profiles, status, k8s)

DESCRIPTION = """\
Serve Qwen3-VL 8B / 4B with vLLM: validate the profiles, plan GPU memory, start vLLM, benchmark it.
Run it from the repository root (it reads profiles/, .env and secrets.env there)."""
EPILOG = """\
Examples:
  serve profiles              what each profile is for, on which GPUs it fits
  serve check                 every profile + docker-compose.yml
  serve plan 8b 4b --gpu l4   will both fit on one L4?
  serve up 4b                 start vLLM with profiles/4b.yaml (port 8001)
  serve gateway 8b 4b         one URL for both, swapping them on demand
  serve status                which model servers are up, what they serve
  serve k8s 8b 4b --gpu l40s  Helm values for Kubernetes (production-stack)
Run serve COMMAND --help for the options of a command."""

# Mistakes a user can make, reported as one line; each message says what was wrong and what to do.
USER_ERRORS: tuple[type[Exception], ...] = (ProfileError, UnknownModelError, UnknownGpuError, ComposeError)
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
EXIT_BUG = 70  # sysexits.h EX_SOFTWARE
DEBUG_VARIABLE = "SERVE_DEBUG"


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog or program_name(),
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    add_global_options(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(sub)
        child = sub.choices[command.NAME]
        # Descriptions and epilogs are written with their line breaks (examples); argparse would rewrap them.
        child.formatter_class = HelpFormatter
        add_global_options(child, after_command=True)
    return parser


def _split_vllm_args(argv: list[str]) -> tuple[list[str], list[str]]:
    """argparse cannot hold both options after a positional and a free tail, so split at "--" first."""
    if "--" not in argv:
        return argv, []
    at = argv.index("--")
    return argv[:at], argv[at + 1 :]


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    own, extra = _split_vllm_args(argv)
    args = build_parser().parse_args(own)
    args.vllm_args = extra
    args.argv = argv
    # Wide enough for the plan table when piped (rich assumes 80 columns without a terminal).
    out = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
    err = Console(stderr=True, soft_wrap=True)
    runners = {command.NAME: command.run for command in COMMANDS}
    try:
        return runners[args.command](args, out)
    except USER_ERRORS as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        return EXIT_USAGE
    except OSError as exc:  # a file that cannot be read or written: name it, with the system's reason
        where = f"{exc.filename}: " if exc.filename else ""
        err.print(f"error: {where}{exc.strerror or exc}", highlight=False, markup=False)
        return EXIT_USAGE
    except KeyboardInterrupt:
        err.print("interrupted", highlight=False)
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get(DEBUG_VARIABLE):
            raise
        err.print(
            f"error: unexpected {type(exc).__name__}: {exc}\nThis is a bug in serve; please report it with the "
            f"command line. {DEBUG_VARIABLE}=1 shows the traceback.",
            highlight=False,
            markup=False,
        )
        return EXIT_BUG
