"""Where a profile fits, for `serve profiles`: on each known GPU, as the placement sizes it (serve.planner.placement)."""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from serve.config.profile import Profile
from serve.planner.detect import DetectedGpu
from serve.planner.gpus import GPUS
from serve.planner.placement import Fit as Placed
from serve.planner.placement import Layout, place


class Fit(StrEnum):
    BESIDE = "full context beside the other slot"  # together on one GPU with the stack's other model
    ALONE = "full context, the GPU to itself"  # the other model runs one at a time with it, or on another GPU
    SHORTER = "shorter context"  # starts with a warned shorter context
    NO = "no"


def gpu_fits(profile: Profile, stack: Sequence[Profile] = ()) -> dict[str, Fit]:
    """GPU label -> how the profile starts there: beside the rest of `stack` (which holds it, in start order),
    alone at its full context, with a shorter one, or not at all."""
    fits: dict[str, Fit] = {}
    for kind in GPUS.values():
        gpu = [DetectedGpu.idle(kind)]
        if len(stack) > 1 and place(stack, gpu).layout is Layout.TOGETHER:
            fits[kind.label] = Fit.BESIDE
            continue
        alone = place([profile], gpu).instances[0].fit
        fits[kind.label] = {Placed.FULL: Fit.ALONE, Placed.SHORTER: Fit.SHORTER}.get(alone, Fit.NO)
    return fits
