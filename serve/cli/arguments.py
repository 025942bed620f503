"""Argument types shared by the commands: each rejects bad input with a message saying what is expected."""

from __future__ import annotations

import argparse
import ipaddress
import sys
import textwrap
from collections.abc import Callable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from serve.config.environment import environ_with_dotenv
from serve.config.profile import Profile, load_profile, resolve_profile_path
from serve.planner.detect import GpuSurvey, survey_gpus
from serve.planner.gpus import GPUS


class HelpFormatter(argparse.HelpFormatter):
    """Keeps the line breaks of descriptions and epilogs (examples, lists) and wraps only the lines that are
    longer than the terminal, each on its own, keeping its indentation."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        lines: list[str] = []
        for line in text.splitlines():
            body = line.lstrip()
            lead = indent + line[: len(line) - len(body)]
            lines += textwrap.wrap(body, width, initial_indent=lead, subsequent_indent=lead) or [""]
        return "\n".join(lines)


def program_name(argv0: str | None = None) -> str:
    """`serve` when run as the console script, `python -m serve` otherwise (what the user typed)."""
    return "serve" if Path(argv0 or sys.argv[0]).name == "serve" else "python -m serve"


def add_global_options(parser: argparse.ArgumentParser, *, after_command: bool = False) -> None:
    """Options every command takes, before or after the command name (`serve --profiles-dir D check` and
    `serve check --profiles-dir D`). After the command the default is SUPPRESS, so an option given before
    the command is not reset by the subparser."""
    parser.add_argument(
        "--profiles-dir",
        type=Path,
        metavar="DIR",
        default=argparse.SUPPRESS if after_command else None,
        help="folder of profile files (default: $SERVE_PROFILES_DIR, else ./profiles)",
    )


def port_number(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port: give a whole number from 1 to 65535")
    return value


LOCALHOST = "localhost"


def bind_address(text: str) -> str:
    """An IP address to listen on (IPv4 or IPv6, brackets optional) or `localhost`."""
    host = text.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if host.lower() == LOCALHOST:
        return LOCALHOST
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an IP address to bind: use 127.0.0.1 or ::1 (this machine only), 0.0.0.0 or :: "
            "(every interface), or one of this machine's addresses"
        ) from None


def positive_gib(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < 10_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a memory size in GiB, e.g. 24 or 79.6")
    return value


def count(minimum: int) -> Callable[[str], int]:
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number >= {minimum}")
        return value

    return parse


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def endpoint(text: str) -> tuple[str, str]:
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


def load(name_or_file: str, profiles_dir: Path | None, environ: Mapping[str, str] | None = None) -> Profile:
    """A profile by name (8b) or file path, with its overrides applied (default: .env, then the environment)."""
    return load_profile(resolve_profile_path(name_or_file, profiles_dir), environ)


def settings_environ() -> dict[str, str]:
    """The variables `serve` reads: .env in the working directory, overridden by the environment."""
    return environ_with_dotenv(Path(".env"))


def add_gpu_options(parser: argparse.ArgumentParser) -> None:
    """--gpu / --gpu-memory-gib: name the GPU instead of asking nvidia-smi (also SERVE_GPU)."""
    gpu = parser.add_mutually_exclusive_group()
    gpu.add_argument(
        "--gpu",
        default=None,
        metavar="NAME",
        help=f"plan for this GPU instead of the detected one: {', '.join(GPUS)}; 2xl4 for two, 24 for 24 GiB "
        "(default: what nvidia-smi reports, else $SERVE_GPU)",
    )
    gpu.add_argument(
        "--gpu-memory-gib",
        type=positive_gib,
        default=None,
        metavar="N",
        help="instead of --gpu: one GPU of N GiB",
    )


def gpu_survey(args: argparse.Namespace, environ: Mapping[str, str]) -> GpuSurvey:
    return survey_gpus(gpu=args.gpu, gpu_memory_gib=args.gpu_memory_gib, environ=environ)
