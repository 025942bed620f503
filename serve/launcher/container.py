"""The compose entrypoint inside vllm/vllm-openai (docker/vllm-entrypoint.sh runs it): resolve the same placement
as `serve up` on the GPUs the container sees, say it in one line, then exec `vllm serve`.

Only vLLM's own dependencies exist in that image (pydantic, pyyaml, python-dotenv, httpx, rich, ...; not
compose-spec, not pydantic-settings): this module and everything it imports must work with that set alone
(tests/test_vllm_entrypoint.py runs it with every other module made unimportable).

Environment (docker-compose.yml gives both model services the whole stack, so both decide the same layout):
  SERVE_PROFILE          the profile this container runs (a file name in SERVE_PROFILES_DIR, without .yaml)
  SERVE_PROFILES_DIR     where the profiles are mounted (default /profiles)
  SERVE_8B_PROFILE, SERVE_4B_PROFILE   the stack's two slots
  SERVE_<FAMILY>_GPU_MEMORY_UTILIZATION, _MAX_MODEL_LEN, _QUANTIZATION, _GPU, and SERVE_GPU: as on bare metal
  SERVE_WAIT_FOR_GPU_S   while the placement refuses only because other processes hold the GPU memory its
                         share needs, look again every few seconds for up to this long (0 or unset: refuse at
                         once). With both models on a GPU that holds one, the second container starts once
                         the gateway has put the first to sleep.
Arguments (compose `command:`) are passed to vLLM after the resolved flags.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from serve.config.profile import Profile, ProfileError, load_profile
from serve.launcher.vllm_process import resolved_args
from serve.planner.detect import survey_gpus
from serve.planner.gpus import UnknownGpuError
from serve.planner.model_facts import UnknownModelError
from serve.planner.resolve import loader, resolve, stack_with, start_report

DEFAULT_PROFILES_DIR = "/profiles"
USAGE_ERROR = 64  # EX_USAGE: a configuration mistake; the message says which
REFUSED = 1
MEMORY_POLL_S = 5.0
WAIT_REPORT_S = 60.0
_PROFILE_NAME = re.compile(r"[A-Za-z0-9._-]+")


class EntrypointError(Exception):
    """A configuration mistake; the message says what to set."""


def _say(line: str) -> None:
    print(f"vllm-entrypoint: {line}", file=sys.stderr, flush=True)


def _profile(environ: Mapping[str, str]) -> tuple[Profile, Path]:
    directory = Path(environ.get("SERVE_PROFILES_DIR") or DEFAULT_PROFILES_DIR)
    name = environ.get("SERVE_PROFILE", "").strip()
    if not name:
        raise EntrypointError(
            "SERVE_PROFILE is empty. Set SERVE_8B_PROFILE / SERVE_4B_PROFILE in .env to a file name in "
            "profiles/ without .yaml (e.g. 8b, 8b-fp8)."
        )
    # Only plain names: no slash, so the value can never leave the profiles directory.
    if not _PROFILE_NAME.fullmatch(name) or name.startswith("."):
        raise EntrypointError(
            f"SERVE_PROFILE={name!r} is not a profile name: use only letters, digits, '.', '_' and '-' "
            "(e.g. 8b-fp8)."
        )
    path = directory / f"{name}.yaml"
    if not path.is_file():
        available = " ".join(sorted(p.stem for p in directory.glob("*.yaml")))
        raise EntrypointError(
            f"no profile '{name}': {path} does not exist. Available: "
            f"{available or f'none (is {directory} mounted?)'}"
        )
    try:
        return load_profile(path, environ), directory
    except ProfileError as exc:
        raise EntrypointError(str(exc)) from None


Prepared = tuple[list[str], dict[str, str]] | int


def prepare(environ: Mapping[str, str], args: Sequence[str]) -> Prepared:
    """The `vllm serve` argv and environment, or the exit code after saying why not."""
    return _prepare(environ, args, _say)[0]


def _prepare(
    environ: Mapping[str, str], args: Sequence[str], say: Callable[[str], None]
) -> tuple[Prepared, bool]:
    """`prepare`, and whether a refusal is only for GPU memory that other processes hold now."""
    try:
        profile, directory = _profile(environ)
        resolution = resolve(
            stack_with(profile, directory, environ),
            survey_gpus(environ=environ),
            starting=profile.name,
            load=loader(directory, environ),
            unknown_models_pass=True,
        )
    except (EntrypointError, ProfileError, UnknownModelError, UnknownGpuError) as exc:
        say(str(exc))
        return USAGE_ERROR, False
    lines, starts = start_report(resolution, profile.name)
    for line in lines:
        say(line)
    placed = resolution.placement.instance(profile.name) if resolution.placement else None
    if not starts:
        return REFUSED, placed is not None and "not enough free GPU memory" in (placed.refusal or "")
    argv = ["vllm", "serve", "--config", str(profile.path), *resolved_args(profile, placed), *args]
    return (argv, {**environ, **(placed.environment() if placed else {})}), False


def _wait_seconds(environ: Mapping[str, str]) -> float:
    text = environ.get("SERVE_WAIT_FOR_GPU_S", "").strip()
    try:
        return max(0.0, float(text or 0))
    except ValueError:
        raise EntrypointError(
            f"SERVE_WAIT_FOR_GPU_S={text!r} is not a number of seconds (e.g. 1800)"
        ) from None


def prepare_when_memory_is_free(
    environ: Mapping[str, str],
    args: Sequence[str],
    *,
    poll_s: float = MEMORY_POLL_S,
    say: Callable[[str], None] = _say,
) -> Prepared:
    """`prepare`, again every `poll_s` while it refuses for want of free GPU memory, up to SERVE_WAIT_FOR_GPU_S.
    The first refusal is said in full, then one progress line a minute, and the full report once it starts."""
    try:
        wait_s = _wait_seconds(environ)
    except EntrypointError as exc:
        say(str(exc))
        return USAGE_ERROR
    started = reported = time.monotonic()
    prepared, held = _prepare(environ, args, say)
    if held and wait_s > 0:
        say(f"waiting up to {wait_s:.0f} s for that memory to be freed (SERVE_WAIT_FOR_GPU_S)")
    while held and time.monotonic() - started < wait_s:
        time.sleep(poll_s)
        lines: list[str] = []
        prepared, held = _prepare(environ, args, lines.append)
        if not held:
            for line in lines:
                say(line)
        elif time.monotonic() - reported >= WAIT_REPORT_S:
            reported = time.monotonic()
            say(f"still waiting for free GPU memory ({reported - started:.0f} s of {wait_s:.0f} s)")
    if held and wait_s > 0:
        say(f"gave up after {time.monotonic() - started:.0f} s: the GPU memory was not freed")
    return prepared


def main(args: Sequence[str] | None = None) -> int:
    prepared = prepare_when_memory_is_free(os.environ, sys.argv[1:] if args is None else args)
    if isinstance(prepared, int):
        return prepared
    argv, environ = prepared
    # The remaining arguments may hold secrets (e.g. --api-key given as a command): only the profile is logged.
    _say(f"profile {argv[3]}")
    os.execvpe(argv[0], argv, environ)
    return 0  # not reached: exec replaces this process


if __name__ == "__main__":
    sys.exit(main())
