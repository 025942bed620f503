"""GPU memory plan for a profile: weights, KV cache per token, what fits, and a decode speed bound.

The arithmetic mirrors vLLM's: an instance owns `gpu-memory-utilization x total` of the GPU; weights and a
runtime overhead (activations at profiling, CUDA graphs, the CUDA context) come off that share first, and the
rest becomes KV cache, which must hold at least one request of max-model-len or vLLM refuses to start.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, Field, computed_field

from serve.config.profile import Profile
from serve.planner.gpus import Gpu
from serve.planner.model_facts import DTYPE_BYTES, ModelFacts

GIB = 2**30
# Memory inside an instance's share that is neither weights nor KV cache. Calibrated on a published vLLM
# log of 8B BF16 on an L4 at 0.9 (22.5 GiB): "Model loading took 16.65 GiB", 1.1 GiB left for KV cache.
RUNTIME_OVERHEAD_GIB = 2.8
# Two instances on one GPU: each process also needs a CUDA context outside the other's share, so the
# fractions of instances that share a GPU must leave some room.
MAX_SHARED_FRACTION = 0.95
# The share one instance takes when it has a GPU to itself (vLLM's default).
ALONE_FRACTION = 0.9
# vLLM allocates KV cache in blocks of this many tokens (GPU default).
KV_BLOCK_TOKENS = 16
# Bytes per weight for the decoder's linear layers under each weight quantization family.
_QUANT_BYTES: dict[str, float] = {"fp8": 1.0, "int8": 1.0, "fp4": 0.5, "4bit": 0.5}
_QUANT_FAMILY: dict[str, str] = {
    **dict.fromkeys(("fp8", "fbgemm_fp8", "fp8_per_tensor", "fp8_per_block", "fp8_per_channel"), "fp8"),
    **dict.fromkeys(("modelopt", "modelopt_mxfp8", "mxfp8", "deepseek_v4_fp8", "online"), "fp8"),
    **dict.fromkeys(("experts_int8", "int8_per_channel_weight_only", "compressed-tensors", "quark"), "int8"),
    **dict.fromkeys(("modelopt_fp4", "mxfp4", "gpt_oss_mxfp4", "nvfp4_per_token"), "fp4"),
}


class ProfilePlan(BaseModel):
    """The plan for one profile on one GPU kind. Memory figures are per GPU."""

    profile: str = Field(description="Profile name.")
    model: str = Field(description="Checkpoint planned.")
    gpu: str = Field(description="GPU planned for.")
    gpu_memory_gib: float = Field(description="Total memory of one GPU, GiB.")
    gpu_memory_utilization: float = Field(description="The profile's share of each GPU.")
    tensor_parallel_size: int = Field(description="GPUs the instance is split across.")
    parameters: int = Field(description="Parameters of the checkpoint.")
    weight_quantization: str | None = Field(description="Weight quantization applied, if any.")
    weights_gib: float = Field(description="Weight memory per GPU, GiB.")
    runtime_overhead_gib: float = Field(description="Activations, CUDA graphs and context, GiB (estimate).")
    kv_bytes_per_token: int = Field(description="KV cache bytes per token for the whole model.")
    kv_cache_gib: float = Field(description="KV cache memory per GPU, GiB (negative: weights do not fit).")
    max_tokens_in_cache: int = Field(description="Tokens the KV cache holds across all requests.")
    max_model_len: int = Field(description="The profile's max-model-len.")
    max_concurrent_at_max_len: float = Field(description="Requests of max-model-len that fit at once.")
    fits: bool = Field(description="vLLM can start: the KV cache holds at least one max-model-len request.")
    largest_max_model_len_alone: int = Field(
        description=f"Longest max-model-len that fits with the GPU to itself (fraction {ALONE_FRACTION})."
    )
    fraction_needed: float = Field(description="Smallest gpu-memory-utilization that fits max-model-len.")
    decode_tokens_per_s_bound: float | None = Field(
        description="Single-stream decode upper bound from memory bandwidth (weights read once per token)."
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def largest_max_model_len(self) -> int:
        """Longest max-model-len that fits at this fraction: whatever the KV cache holds."""
        return self.max_tokens_in_cache


class TogetherPlan(BaseModel):
    """Whether several profiles fit on one GPU at the same time."""

    profiles: list[str]
    total_fraction: float = Field(description="Sum of the gpu-memory-utilization shares.")
    fits: bool = Field(description="Each fits in its share and the shares leave room for CUDA contexts.")
    reasons: list[str] = Field(description="Why not, when it does not fit.")


def _weight_bytes(facts: ModelFacts, quantization: str | None, dtype: str) -> tuple[float, str | None]:
    dtype_bytes = DTYPE_BYTES.get(dtype, DTYPE_BYTES[facts.dtype])
    method = quantization or facts.checkpoint_quantization
    if method is None:
        return facts.total_params * dtype_bytes, None
    linear_bytes = _QUANT_BYTES.get(_QUANT_FAMILY.get(method, "4bit"), 0.5)
    # Embeddings, the LM head and the vision encoder stay in 16-bit in Qwen's FP8 checkpoints; assume the same.
    rest = facts.total_params - facts.decoder_linear_params
    return facts.decoder_linear_params * linear_bytes + rest * dtype_bytes, method


def kv_bytes_per_token(facts: ModelFacts, kv_cache_dtype: str = "auto", dtype: str = "auto") -> int:
    """layers x kv heads x head_dim x 2 (K and V) x bytes per element."""
    element = 1 if kv_cache_dtype.startswith("fp8") else DTYPE_BYTES.get(dtype, DTYPE_BYTES[facts.dtype])
    t = facts.text
    return t.num_hidden_layers * t.num_key_value_heads * t.head_dim * 2 * element


def plan_profile(profile: Profile, facts: ModelFacts, gpu: Gpu) -> ProfilePlan:
    s = profile.settings
    tp = s.tensor_parallel_size
    weights, method = _weight_bytes(facts, s.quantization, s.dtype)
    weights_per_gpu = weights / tp / GIB
    kv_per_token = kv_bytes_per_token(facts, s.kv_cache_dtype, s.dtype)
    # Tensor parallelism splits the KV heads across GPUs (a head is replicated when there are fewer heads).
    kv_per_token_per_gpu = kv_per_token / min(tp, facts.text.num_key_value_heads)
    share = gpu.memory_gib * s.gpu_memory_utilization
    if s.kv_cache_memory_bytes is not None:
        kv_cache = s.kv_cache_memory_bytes / GIB  # vLLM then ignores the fraction for the cache
        overhead = 0.0
    else:
        overhead = RUNTIME_OVERHEAD_GIB
        kv_cache = share - weights_per_gpu - overhead

    def tokens_in(cache_gib: float) -> int:
        """Whole KV blocks that fit, in tokens."""
        return max(0, int(cache_gib * GIB // (kv_per_token_per_gpu * KV_BLOCK_TOKENS))) * KV_BLOCK_TOKENS

    tokens = tokens_in(kv_cache)
    alone = tokens_in(gpu.memory_gib * ALONE_FRACTION - weights_per_gpu - overhead)
    needed = weights_per_gpu + overhead + s.max_model_len * kv_per_token_per_gpu / GIB
    bound = gpu.bandwidth_tb_s * 1e12 * tp / weights if weights else None
    return ProfilePlan(
        profile=profile.name,
        model=s.model,
        gpu=gpu.label,
        gpu_memory_gib=gpu.memory_gib,
        gpu_memory_utilization=s.gpu_memory_utilization,
        tensor_parallel_size=tp,
        parameters=facts.total_params,
        weight_quantization=method,
        weights_gib=round(weights_per_gpu, 2),
        runtime_overhead_gib=overhead,
        kv_bytes_per_token=kv_per_token,
        kv_cache_gib=round(kv_cache, 2),
        max_tokens_in_cache=tokens,
        max_model_len=s.max_model_len,
        max_concurrent_at_max_len=round(tokens / s.max_model_len, 2),
        fits=tokens >= s.max_model_len,
        largest_max_model_len_alone=alone,
        fraction_needed=min(math.ceil(needed / gpu.memory_gib * 1000) / 1000, 99.0),  # up: it must fit
        decode_tokens_per_s_bound=round(bound, 1) if bound else None,
    )


def total_share(fractions: Iterable[float]) -> float:
    """The GPU shares of instances on one GPU, added up (rounded: 0.55 + 0.35 is 0.9, not 0.9000000000000001)."""
    return round(sum(fractions), 3)


def plan_together(plans: Sequence[ProfilePlan]) -> TogetherPlan:
    total = total_share(p.gpu_memory_utilization for p in plans)
    reasons = [
        f"{p.profile} does not fit in its share ({p.gpu_memory_utilization})" for p in plans if not p.fits
    ]
    if total > MAX_SHARED_FRACTION:
        reasons.append(
            f"the shares add up to {total} > {MAX_SHARED_FRACTION}: lower gpu-memory-utilization so that "
            "each instance finds its share free when it starts"
        )
    return TogetherPlan(
        profiles=[p.profile for p in plans], total_fraction=total, fits=not reasons, reasons=reasons
    )
