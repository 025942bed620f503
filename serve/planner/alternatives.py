"""What to change when the placement refuses: concrete alternatives, each checked by placing it too.

Kept apart from serve.planner.placement so that the placement stays a pure function of profiles and GPUs;
this module needs to load the other profiles (FP8 siblings, the 4B model) to try them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from serve.config.profile import Profile
from serve.planner.detect import DetectedGpu
from serve.planner.gpus import GPUS
from serve.planner.placement import Fit, InstancePlacement, Layout, Placement, family_variable, place
from serve.planner.plan import KV_BLOCK_TOKENS

# Loads a profile by name with the same environment; None when there is no such profile.
ProfileLoader = Callable[[str], Profile | None]
SMALLER_FAMILY = {"8b": "4b"}


def with_context(profile: Profile, tokens: int) -> Profile:
    """The profile as if SERVE_<FAMILY>_MAX_MODEL_LEN=tokens were set."""
    overrides = profile.overrides.model_copy(
        update={"values": {**profile.overrides.values, "max-model-len": str(tokens)}}
    )
    settings = profile.settings.model_copy(update={"max_model_len": tokens})
    return dataclasses.replace(profile, settings=settings, overrides=overrides)


def _fp8_sibling(profile: Profile, load: ProfileLoader) -> Profile | None:
    if profile.settings.quantization or "fp8" in profile.settings.model.lower():
        return None
    return load(f"{profile.family}-fp8")


def _context_words(instance: InstancePlacement) -> str:
    return f"context {instance.max_model_len:,}" + (" (shorter)" if instance.fit is Fit.SHORTER else "")


def for_instance(
    instance: InstancePlacement, profile: Profile, gpus: Sequence[DetectedGpu], load: ProfileLoader
) -> list[str]:
    """Alternatives for one refused instance on the GPU(s) it was refused on."""
    mine = [g for g in gpus if g.index in instance.gpu_indices] or list(gpus[:1])
    options: list[str] = []
    if (fp8 := _fp8_sibling(profile, load)) is not None:
        tried = place([fp8], mine).instances[0]
        if tried.starts:
            options.append(
                f"the FP8 profile {fp8.name} (SERVE_{profile.family.upper()}_PROFILE={fp8.name} in compose): "
                f"{_context_words(tried)}"
            )
    smaller = SMALLER_FAMILY.get(profile.family)
    if smaller and (other := load(smaller)) is not None:
        tried = place([other], mine).instances[0]
        if tried.starts:
            options.append(f"the {smaller.upper()} model (profile {other.name}): {_context_words(tried)}")
    if 0 < instance.kv_cache_tokens < instance.min_useful_context:
        options.append(
            f"{family_variable(instance, 'MAX_MODEL_LEN')}={instance.kv_cache_tokens} for a short chat (fewer "
            "or smaller images)"
        )
    if "not enough free GPU memory" in (instance.refusal or ""):
        options.append("stop the processes that hold GPU memory (listed above)")
    for kind in sorted(GPUS.values(), key=lambda k: k.memory_mib):
        if place([profile], [DetectedGpu.idle(kind)]).instances[0].fit is Fit.FULL:
            if kind.memory_mib > instance.gpu_total_gib * 1024:
                options.append(f"a GPU with more memory: it fits from {kind.label} up")
            break
    return options


def _largest_shared_context(profiles: Sequence[Profile], gpus: Sequence[DetectedGpu]) -> int | None:
    """The longest context every profile can have while they run together, if any is still useful."""
    low = max(place([p], gpus[:1]).instances[0].min_useful_context for p in profiles)
    high = min(p.settings.max_model_len for p in profiles)

    def fits(tokens: int) -> bool:
        return place([with_context(p, tokens) for p in profiles], gpus).all_start

    if low > high or not fits(low):
        return None
    while high - low > KV_BLOCK_TOKENS:
        middle = (low + high) // 2 // KV_BLOCK_TOKENS * KV_BLOCK_TOKENS
        low, high = (middle, high) if fits(middle) else (low, middle)
    return low


def for_together(profiles: Sequence[Profile], gpus: Sequence[DetectedGpu], load: ProfileLoader) -> list[str]:
    """Alternatives when the stack's instances cannot run at the same time."""
    names = [p.name for p in profiles]
    options = [f"run one at a time (compose: COMPOSE_PROFILES={' or '.join(p.family for p in profiles)})"]
    fp8 = [_fp8_sibling(p, load) or p for p in profiles]
    if [p.name for p in fp8] != names and place(fp8, gpus).all_start:
        setting = " ".join(f"SERVE_{p.family.upper()}_PROFILE={p.name}" for p in fp8 if p.name not in names)
        options.append(f"the FP8 profiles ({setting}): {place(fp8, gpus).layout.words}")
    if (tokens := _largest_shared_context(profiles, gpus)) is not None:
        setting = " ".join(f"{family_variable(p.name, 'MAX_MODEL_LEN')}={tokens}" for p in profiles)
        options.append(f"a shorter context for both ({setting})")
    doubled = [*gpus, *(g.model_copy(update={"index": g.index + len(gpus)}) for g in gpus)]
    if (
        len(gpus) == 1
        and place(profiles, doubled).layout is Layout.ONE_GPU_EACH
        and place(profiles, doubled).all_start
    ):
        options.append("a second GPU like this one (one GPU each)")
    return options


def alternatives(
    placement: Placement, profiles: Sequence[Profile], load: ProfileLoader
) -> dict[str, list[str]]:
    """Per refused instance (by profile name), and under 'together' for a stack that cannot run at once."""
    by_name = {p.name: p for p in profiles}
    found = {
        i.profile: for_instance(i, by_name[i.profile], placement.gpus, load)
        for i in placement.instances
        if i.fit is Fit.REFUSED
    }
    if placement.layout is Layout.CANNOT_RUN_TOGETHER:
        found["together"] = for_together(list(profiles), placement.gpus, load)
    return found
