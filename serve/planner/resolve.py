"""From the environment to a placement, the one path for `serve plan`, `serve check`, `serve up` and the compose
entrypoint: the stack's profiles, the GPUs, the placement, what to change, and the lines that say so.

Plain text only (no rich): the compose entrypoint imports this inside vllm/vllm-openai, where only vLLM's own
dependencies are installed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from serve.config.profile import Profile, ProfileError, load_profile, resolve_profile_path
from serve.planner.alternatives import ProfileLoader, alternatives
from serve.planner.detect import GpuSurvey
from serve.planner.model_facts import UnknownModelError
from serve.planner.placement import Fit, Layout, Placement, place

# The model slots of the stack, in start order (compose starts vllm-4b once vllm-8b is healthy). Each slot
# runs SERVE_<FAMILY>_PROFILE (default: the family's own profile); both compose services get both names.
STACK_FAMILIES = ("8b", "4b")


def stack_profile_names(environ: Mapping[str, str]) -> list[str]:
    return [environ.get(f"SERVE_{family.upper()}_PROFILE", "").strip() or family for family in STACK_FAMILIES]


def loader(profiles_dir: Path | None, environ: Mapping[str, str]) -> ProfileLoader:
    """Load profiles by name with `environ` applied; None for a name with no valid profile file."""

    def load(name: str) -> Profile | None:
        try:
            return load_profile(resolve_profile_path(name, profiles_dir), environ)
        except ProfileError:
            return None

    return load


def stack_with(started: Profile, profiles_dir: Path | None, environ: Mapping[str, str]) -> list[Profile]:
    """The stack's profiles with `started` in its family's slot; a profile outside the slots runs alone."""
    if started.family not in STACK_FAMILIES:
        return [started]
    profiles = []
    for family, name in zip(STACK_FAMILIES, stack_profile_names(environ), strict=True):
        if family == started.family:
            profiles.append(started)
            continue
        try:
            profiles.append(load_profile(resolve_profile_path(name, profiles_dir), environ))
        except ProfileError as exc:
            raise ProfileError(f"SERVE_{family.upper()}_PROFILE (the stack's {family} slot): {exc}") from None
    return profiles


@dataclass
class Resolution:
    """The GPUs found, the placement on them (None without a GPU) and what to change where it refuses."""

    survey: GpuSurvey
    profiles: list[Profile]
    placement: Placement | None
    alternatives: dict[str, list[str]] = field(default_factory=dict)
    why_none: str = ""  # why there is no placement although a GPU was found

    @property
    def runnable(self) -> bool:
        return self.placement is None or self.placement.all_start


def resolve(
    profiles: Sequence[Profile],
    survey: GpuSurvey,
    *,
    starting: str | None = None,
    load: ProfileLoader | None = None,
    unknown_models_pass: bool = False,
) -> Resolution:
    """Place `profiles` on the surveyed GPUs. With `unknown_models_pass`, a model the planner has no facts for
    (neither a known checkpoint nor a local config.json) means no placement instead of an error, so that
    starting it is still possible with the profile's own values."""
    if not survey.found:
        return Resolution(survey, list(profiles), None)
    try:
        placement = place(profiles, survey.gpus, starting=starting, processes=survey.processes)
    except UnknownModelError as exc:
        if not unknown_models_pass:
            raise
        return Resolution(survey, list(profiles), None, why_none=f"the planner cannot size it: {exc}")
    found = alternatives(placement, profiles, load) if load is not None else {}
    return Resolution(survey, list(profiles), placement, found)


def _others(placement: Placement, name: str) -> str:
    """How the rest of the stack sits next to `name`, for the end of its placement line."""
    others = [i for i in placement.instances if i.profile != name]
    if not others:
        return ""
    if placement.layout is Layout.CANNOT_RUN_TOGETHER:
        names = " + ".join(i.profile for i in placement.instances)
        return f"; {names} cannot run together on these GPUs: one at a time"
    return (
        "; " + ", ".join(f"{i.profile} on GPU {i.gpu_index}" for i in others) + f" ({placement.layout.words})"
    )


def start_report(resolution: Resolution, name: str) -> tuple[list[str], bool]:
    """What `serve up` and the entrypoint print before vLLM starts, and whether to start it."""
    survey, placement = resolution.survey, resolution.placement
    if placement is None:
        why = resolution.why_none or survey.describe()
        return [f"placement: none ({why}): vLLM gets the profile's own values, no placement flags"], True
    instance = placement.instance(name)
    lines = survey.describe().splitlines()
    lines.append(f"placement: {instance.line()}{_others(placement, name)}")
    lines += [f"warning: {warning}" for warning in instance.warnings]
    if instance.fit is Fit.REFUSED:
        lines.append(f"error: {name} is not started, so nothing is downloaded: {instance.refusal}")
        options = resolution.alternatives.get(name, [])
        if options:
            lines.append("what to change: " + "; ".join(options))
        if placement.layout is Layout.CANNOT_RUN_TOGETHER:  # most likely the other model holds the GPU
            lines.append(
                f"note: {placement.refusal}; instead: {'; '.join(resolution.alternatives.get('together', []))}"
            )
        return lines, False
    return lines, True
