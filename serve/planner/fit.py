"""Where a profile fits: on each known GPU, at its own share (beside the other slot), alone, or not at all."""

from __future__ import annotations

from enum import StrEnum

from serve.config.profile import Profile
from serve.planner.gpus import GPUS
from serve.planner.model_facts import model_facts
from serve.planner.plan import ALONE_FRACTION, plan_profile


class Fit(StrEnum):
    AT_SHARE = "at its share"  # fits in gpu-memory-utilization: beside the other slot's default, too
    ALONE = f"alone ({ALONE_FRACTION})"  # fits only with the GPU to itself
    NO = "no"


def gpu_fits(profile: Profile) -> dict[str, Fit]:
    """GPU label -> how the profile's max-model-len fits there (serve plan's arithmetic)."""
    facts = model_facts(profile.settings.model)
    fits: dict[str, Fit] = {}
    for gpu in GPUS.values():
        plan = plan_profile(profile, facts, gpu)
        if plan.fits:
            fits[gpu.label] = Fit.AT_SHARE
        elif plan.largest_max_model_len_alone >= plan.max_model_len:
            fits[gpu.label] = Fit.ALONE
        else:
            fits[gpu.label] = Fit.NO
    return fits
