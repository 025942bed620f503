"""`serve profiles`: what profiles exist, what each is for, which slot it runs in and on which GPUs it fits."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pydantic import BaseModel, Field
from rich.console import Console

from serve.cli.arguments import program_name
from serve.config.environment import environ_with_dotenv
from serve.config.overrides import variable_prefix
from serve.config.profile import (
    ProfileError,
    default_profiles_dir,
    family_of,
    load_profile,
    profile_paths,
    profile_summary,
)
from serve.planner.fit import Fit, gpu_fits
from serve.planner.model_facts import UnknownModelError
from serve.planner.resolve import stack_with

NAME = "profiles"


class ProfileListing(BaseModel):
    """One profile as `serve profiles` shows it."""

    name: str = Field(description="Profile name (the file name without .yaml).")
    path: str = Field(description="The profile file.")
    summary: str = Field(description="What it is and what it is for: the file's first comment line.")
    slot: str = Field(description="Family: its variants share one port and run one at a time.")
    selected: bool = Field(
        description="The one its slot runs in docker compose (SERVE_<FAMILY>_PROFILE, default: the family's own)."
    )
    select_with: str = Field(description="The variable and value that make compose run it.")
    model: str | None = Field(default=None, description="Checkpoint.")
    served_name: str | None = Field(default=None, description="Model id clients send.")
    port: int | None = Field(default=None, description="Port of the slot.")
    max_model_len: int | None = Field(default=None, description="Context length in tokens.")
    gpu_memory_utilization: float | None = Field(
        default=None,
        description="Share of the whole GPU set in the profile or by variable; None: the placement's.",
    )
    fits: dict[str, Fit] = Field(
        default_factory=dict,
        description="GPU -> beside the other slot, alone, with a shorter context, or no.",
    )
    error: str | None = Field(default=None, description="Why the profile cannot be used, if it cannot.")


def register(sub: argparse._SubParsersAction) -> None:
    profiles = sub.add_parser(
        NAME,
        help="list the profiles: what each is for, its slot and port, on which GPUs it fits",
        description="Lists every profile with its one-line summary, the slot (port) it runs in, what it "
        "serves, and where it fits as the placement sizes it (serve plan): at its full context beside the "
        "other slot's model on one GPU, only with the GPU to itself, with a shorter context, or not at all. "
        "Overrides from .env and the environment apply.",
    )
    profiles.add_argument("--json", action="store_true", help="print a JSON list instead")


def listing(path: Path, env: dict[str, str]) -> ProfileListing:
    slot = family_of(path.stem)
    variable = f"{variable_prefix(slot)}PROFILE"
    base = {
        "name": path.stem,
        "path": str(path),
        "summary": profile_summary(path),
        "slot": slot,
        "selected": (env.get(variable) or slot).strip() == path.stem,
        "select_with": f"{variable}={path.stem}",
    }
    try:
        profile = load_profile(path, env)
    except ProfileError as exc:
        return ProfileListing(**base, error=str(exc).splitlines()[0])
    s = profile.settings
    try:
        stack = stack_with(profile, path.parent, env)
    except ProfileError:
        stack = []  # the other slot's profile is broken (listed with its error): where this one fits alone
    try:
        fits = gpu_fits(profile, stack)
    except UnknownModelError:
        fits = {}  # a checkpoint the planner has no facts for: serve plan says why
    return ProfileListing(
        **base,
        model=s.model,
        served_name=s.served_name,
        port=s.port,
        max_model_len=s.max_model_len,
        gpu_memory_utilization=s.gpu_memory_utilization,
        fits=fits,
    )


def _print(out: Console, item: ProfileListing, prog: str) -> None:
    selected = " [green](selected for its slot)[/]" if item.selected else ""
    out.print(f"[bold]{item.name}[/]{selected}", highlight=False)
    if item.summary:
        out.print(f"    {item.summary}", highlight=False, markup=False)
    if item.error:
        out.print(f"    [red]invalid:[/] {item.error}", highlight=False, markup=False)
        out.print(f"    {prog} check lists every problem", highlight=False)
        return
    out.print(
        f"    {item.model} served as {item.served_name}, {item.max_model_len:,} tokens, "
        + (
            f"{item.gpu_memory_utilization:g} of the GPU"
            if item.gpu_memory_utilization is not None
            else "GPU share sized by the placement"
        ),
        highlight=False,
        markup=False,
    )
    out.print(
        f"    slot {item.slot} on port {item.port}: docker compose with {item.select_with}, or {prog} up "
        f"{item.name}",
        highlight=False,
        markup=False,
    )
    for fit, label in (
        (Fit.BESIDE, "fits beside the other slot's model"),
        (Fit.ALONE, "fits with the GPU to itself"),
        (Fit.SHORTER, "starts with a shorter context"),
        (Fit.NO, "does not fit"),
    ):
        gpus = [gpu for gpu, found in item.fits.items() if found is fit]
        if gpus:
            out.print(f"    {label}: {', '.join(gpus)}", highlight=False, markup=False)


def run(args: argparse.Namespace, out: Console) -> int:
    profiles_dir = args.profiles_dir or default_profiles_dir()
    # Slot by slot, each slot's own profile first, then its variants.
    paths = sorted(
        profile_paths(profiles_dir), key=lambda p: (family_of(p.stem), p.stem != family_of(p.stem), p.stem)
    )
    if not paths:
        raise ProfileError(f"{profiles_dir}: no profile files (*.yaml); pass --profiles-dir")
    env = environ_with_dotenv(Path(".env"))
    items = [listing(path, env) for path in paths]
    if args.json:
        print(json.dumps([item.model_dump(mode="json") for item in items], indent=2))
        return 0 if all(item.error is None for item in items) else 1
    prog = program_name()
    out.print(
        f"{len(items)} profiles in {profiles_dir}. A slot is one port: its variants are alternatives, run "
        "one at a time. GPU fit as the placement sizes it (serve plan), at the profile's context length.\n",
        highlight=False,
    )
    for item in items:
        _print(out, item, prog)
    return 0 if all(item.error is None for item in items) else 1
