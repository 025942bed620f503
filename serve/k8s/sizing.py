"""What one pod of a profile needs when it has its GPU(s) to itself: GPU share, context, CPU, memory, storage.

The GPU side is the placement (serve/planner/placement.py), the one function that sizes every instance, on
idle GPUs of the type the cluster's nodes have: share, context and KV cache dtype, as `serve plan` says.
"""

from __future__ import annotations

import dataclasses
import math

from pydantic import BaseModel, Field

from serve.config.profile import Profile, ProfileError
from serve.planner.detect import DetectedGpu
from serve.planner.gpus import Gpu
from serve.planner.model_facts import model_facts
from serve.planner.placement import InstancePlacement, place
from serve.planner.plan import ProfilePlan, plan_profile

# vLLM's processes on the host, besides caches: the API server (tokenizer, image preprocessing) and the
# engine core, plus one worker per GPU (torch and CUDA's host-side state).
HOST_BASE_GIB = 4.0
HOST_PER_GPU_GIB = 2.0
# vLLM's default mm-processor-cache-gb; the cache is held once by the API server and once by the engine core.
DEFAULT_MM_CACHE_GB = 4.0
MM_CACHE_COPIES = 2
# The API server and engine core keep a core busy each, every GPU worker one more; the rest is room for image
# decoding and preprocessing, which run on the CPU.
CPU_BASE = 2
CPU_PER_GPU = 2
# The weights volume keeps two revisions: an update downloads the new checkpoint beside the old one.
CHECKPOINT_COPIES = 2
STORAGE_SLACK_GIB = 2


class SizingError(ProfileError):
    """The profile cannot run on one pod of this GPU type; the message names the alternatives."""


class PodSizing(BaseModel):
    """One pod of one profile on one GPU type (memory figures per pod; KV figures per replica)."""

    profile: str = Field(description="Profile name.")
    gpu: str = Field(description="GPU type planned for.")
    gpus_per_pod: int = Field(description="GPUs requested (tensor-parallel-size).")
    gpu_memory_utilization: float = Field(description="Share of each GPU vLLM takes.")
    share_source: str = Field(description="Where the share came from.")
    max_model_len: int = Field(description="Context written into the values.")
    profile_max_model_len: int = Field(description="The profile's own context.")
    kv_tokens: int = Field(description="Tokens one replica's KV cache holds.")
    kv_cache_dtype: str | None = Field(
        default=None,
        description="--kv-cache-dtype the placement sets instead of the profile's (no FP8 here).",
    )
    checkpoint_gib: float = Field(description="The checkpoint's weights on disk, GiB.")
    request_memory_gib: int = Field(
        description="Host memory request: vLLM's processes and its multimodal caches."
    )
    limit_memory_gib: int = Field(
        description="Host memory limit: the request plus the weights passing through."
    )
    request_cpu: int = Field(description="CPU request, whole cores.")
    pvc_gib: int = Field(description="Weights volume: two checkpoint revisions plus slack.")
    warnings: list[str] = Field(
        default_factory=list, description="What was changed from the profile, and why."
    )

    @property
    def concurrent_at_max_len(self) -> float:
        return self.kv_tokens / self.max_model_len


def pod_placement(profile: Profile, gpu: Gpu) -> InstancePlacement:
    """The placement of one pod with its GPU(s) to itself (tensor-parallel-size of them, idle)."""
    gpus = [DetectedGpu.idle(gpu, index) for index in range(profile.settings.tensor_parallel_size)]
    return place([profile], gpus).instances[0]


def _with(profile: Profile, **settings: object) -> Profile:
    return dataclasses.replace(profile, settings=profile.settings.model_copy(update=settings))


def _plan(profile: Profile, gpu: Gpu, **settings: object) -> ProfilePlan:
    changed = _with(profile, **settings)
    return plan_profile(changed, model_facts(changed.settings.model), DetectedGpu.idle(gpu))


def _mm_cache_gb(profile: Profile) -> float:
    value = (profile.settings.model_extra or {}).get("mm-processor-cache-gb", DEFAULT_MM_CACHE_GB)
    try:
        return max(float(value), 0.0)
    except (TypeError, ValueError):
        raise ProfileError(
            f"{profile.path}: mm-processor-cache-gb: {value!r} is not a size in GiB, e.g. 4"
        ) from None


def size_pod(profile: Profile, gpu: Gpu) -> PodSizing:
    """Share and context that start on this GPU type, and the pod's requests; SizingError when none does."""
    s = profile.settings
    placed = pod_placement(profile, gpu)
    if not placed.starts:
        why = placed.refusal or "; ".join(placed.warnings)
        raise SizingError(
            f"{profile.name}: cannot run on one {gpu.label} ({why}). Options: an FP8 profile, the 4B model, a "
            f"larger --gpu, a shorter context (SERVE_{profile.family.upper()}_MAX_MODEL_LEN), or "
            "tensor-parallel-size 2 in the profile."
        )
    share = placed.gpu_memory_utilization
    source = "alone on its GPU" if placed.share_from == "placement" else placed.share_from
    context, warnings = placed.max_model_len, list(placed.warnings)
    checkpoint = _plan(profile, gpu, quantization=None, dtype="auto", tensor_parallel_size=1).weights_gib
    mm_cache = _mm_cache_gb(profile)
    tp = s.tensor_parallel_size
    request = math.ceil(HOST_BASE_GIB + HOST_PER_GPU_GIB * tp + MM_CACHE_COPIES * mm_cache)
    return PodSizing(
        profile=profile.name,
        gpu=gpu.label,
        gpus_per_pod=tp,
        gpu_memory_utilization=share,
        share_source=source,
        max_model_len=context,
        profile_max_model_len=s.max_model_len,
        kv_tokens=placed.kv_cache_tokens,
        kv_cache_dtype=placed.kv_cache_dtype,
        checkpoint_gib=checkpoint,
        request_memory_gib=request,
        limit_memory_gib=request + math.ceil(checkpoint),
        request_cpu=CPU_BASE + CPU_PER_GPU * tp,
        pvc_gib=math.ceil(CHECKPOINT_COPIES * checkpoint + STORAGE_SLACK_GIB),
        warnings=warnings,
    )
