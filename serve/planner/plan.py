"""GPU memory arithmetic for a profile: weights, KV cache per token, what fits, and a decode speed bound.

The arithmetic mirrors vLLM's: an instance owns `gpu-memory-utilization x total` of the GPU; weights and a
runtime overhead (activations at profiling, CUDA graphs) come off that share first, and the rest becomes KV
cache, which must hold at least one request of max-model-len or vLLM refuses to start. The process's CUDA
context is outside the share: vLLM measures free memory after creating it. serve.planner.placement decides
the share and the context; this module only counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

from pydantic import BaseModel, Field, computed_field

from serve.config.profile import Profile, ProfileSettings
from serve.planner.detect import DetectedGpu
from serve.planner.model_facts import DTYPE_BYTES, ModelFacts

GIB = 2**30
# Memory inside an instance's share that is neither weights nor KV cache. Calibrated on a published vLLM
# log of 8B BF16 on an L4 at 0.9 (22.5 GiB): "Model loading took 16.65 GiB", 1.1 GiB left for KV cache.
RUNTIME_OVERHEAD_GIB = 2.8
# THE one number for GPU shares: the instances on one GPU take at most this fraction of it together, and an
# instance alone takes all of it. The rest holds each process's CUDA context (outside its share, see
# CUDA_CONTEXT_GIB) and the driver's reserve; vLLM's own default for one instance is 0.92.
MAX_GPU_SHARE = 0.9
# A PyTorch process's CUDA context, cuBLAS workspace and NCCL buffers: allocated before vLLM measures free
# memory, so outside its share, and what a second instance on the GPU must find free on top of its share.
CUDA_CONTEXT_GIB = 0.5
# What a vLLM instance asleep at level 1 still holds on the GPU (CUDA context and pools; weights go to CPU
# RAM, the KV cache is freed). A planning figure: measure it on your GPU.
SLEEPING_INSTANCE_GIB = 1.0
# vLLM allocates KV cache in blocks of this many tokens (GPU default).
KV_BLOCK_TOKENS = 16
# The shortest context still worth starting: a chat with its images and a few thousand tokens of text.
MIN_USEFUL_CONTEXT = 8_000
CHAT_TEXT_TOKENS = 2_048
# Video at start-up: vLLM profiles one dummy video of the largest size the profile allows, so its peak is
# what enabling video adds to the runtime overhead (which was calibrated with images). Two parts, both
# planning estimates: the vision encoder's activations over the video's patches (per patch: the attention
# projections, 4 x width, and the MLP, the ViT's intermediate size; the input and output of the largest op
# alive at once, hence 2 copies), and the encoder cache, which holds one item's output (every deepstack tap
# included) and is sized at least to vLLM's GPU default max-num-batched-tokens.
VIT_ACTIVATION_COPIES = 2
ENCODER_CACHE_MIN_TOKENS = 8192
# Bytes per weight for the decoder's linear layers under each weight quantization family.
_QUANT_BYTES: dict[str, float] = {"fp8": 1.0, "int8": 1.0, "fp4": 0.5, "4bit": 0.5}
_QUANT_FAMILY: dict[str, str] = {
    **dict.fromkeys(("fp8", "fbgemm_fp8", "fp8_per_tensor", "fp8_per_block", "fp8_per_channel"), "fp8"),
    **dict.fromkeys(("modelopt", "modelopt_mxfp8", "mxfp8", "deepseek_v4_fp8", "online"), "fp8"),
    **dict.fromkeys(("experts_int8", "int8_per_channel_weight_only", "compressed-tensors", "quark"), "int8"),
    **dict.fromkeys(("modelopt_fp4", "mxfp4", "gpt_oss_mxfp4", "nvfp4_per_token"), "fp4"),
}


class ModelMemory(BaseModel):
    """What one instance of a profile needs on each of its GPUs, independent of the GPU."""

    weights_gib: float = Field(description="Weight memory per GPU, GiB.")
    weight_quantization: str | None = Field(description="Weight quantization applied, if any.")
    parameters: int = Field(description="Parameters of the checkpoint.")
    runtime_overhead_gib: float = Field(
        description="Activations and CUDA graphs inside the share, GiB (video_startup_gib included)."
    )
    video_startup_gib: float = Field(
        0.0, description="What profiling the largest video adds to the start-up peak, GiB (estimate)."
    )
    kv_cache_dtype: str = Field(description="KV cache dtype ('auto' = the model's dtype).")
    kv_bytes_per_token: int = Field(description="KV cache bytes per token for the whole model.")
    kv_bytes_per_token_per_gpu: float = Field(description="KV cache bytes per token on each GPU.")
    fixed_kv_cache_gib: float | None = Field(description="kv-cache-memory-bytes, when the profile fixes it.")
    tensor_parallel_size: int = Field(description="GPUs the instance is split across.")

    def kv_cache_gib(self, share: float, total_gib: float) -> float:
        """KV cache per GPU at this share (negative: weights and overhead do not fit in it)."""
        if self.fixed_kv_cache_gib is not None:
            return self.fixed_kv_cache_gib
        return total_gib * share - self.weights_gib - self.runtime_overhead_gib

    def tokens_in(self, cache_gib: float) -> int:
        """Tokens in the whole KV blocks that fit in `cache_gib`."""
        blocks = int(cache_gib * GIB // (self.kv_bytes_per_token_per_gpu * KV_BLOCK_TOKENS))
        return max(0, blocks) * KV_BLOCK_TOKENS

    def kv_tokens(self, share: float, total_gib: float) -> int:
        return self.tokens_in(self.kv_cache_gib(share, total_gib))

    def need_gib(self, context: int) -> float:
        """Memory per GPU an instance needs inside its share to hold one request of `context` tokens."""
        blocks = math.ceil(context / KV_BLOCK_TOKENS) * KV_BLOCK_TOKENS
        kv = blocks * self.kv_bytes_per_token_per_gpu / GIB
        return self.weights_gib + self.runtime_overhead_gib + kv

    def share_needed(self, context: int, total_gib: float) -> float:
        """Smallest gpu-memory-utilization (to 0.01, rounded up) that holds one request of `context` tokens."""
        return math.ceil(self.need_gib(context) / total_gib * 100 - 1e-9) / 100


class ProfilePlan(BaseModel):
    """The arithmetic for one profile at one share and context on one GPU. Memory figures are per GPU."""

    profile: str = Field(description="Profile name.")
    model: str = Field(description="Checkpoint planned.")
    gpu: str = Field(description="GPU planned for.")
    gpu_memory_gib: float = Field(description="Total memory of one GPU, GiB.")
    gpu_memory_utilization: float = Field(description="The share of each GPU planned.")
    tensor_parallel_size: int = Field(description="GPUs the instance is split across.")
    parameters: int = Field(description="Parameters of the checkpoint.")
    weight_quantization: str | None = Field(description="Weight quantization applied, if any.")
    weights_gib: float = Field(description="Weight memory per GPU, GiB.")
    runtime_overhead_gib: float = Field(description="Activations and CUDA graphs, GiB (estimate).")
    video_startup_gib: float = Field(description="Part of it for the largest video vLLM profiles, GiB.")
    image_max_tokens: int = Field(description="Visual tokens one image costs at most (the profile's cap).")
    video_max_tokens: int | None = Field(description="Visual tokens one video costs at most; None: no video.")
    kv_cache_dtype: str = Field(description="KV cache dtype planned ('auto' = the model's dtype).")
    kv_bytes_per_token: int = Field(description="KV cache bytes per token for the whole model.")
    kv_cache_gib: float = Field(description="KV cache memory per GPU, GiB (negative: weights do not fit).")
    max_tokens_in_cache: int = Field(description="Tokens the KV cache holds across all requests.")
    max_model_len: int = Field(description="The max-model-len planned.")
    max_concurrent_at_max_len: float = Field(description="Requests of max-model-len that fit at once.")
    fits: bool = Field(description="vLLM can start: the KV cache holds at least one max-model-len request.")
    largest_max_model_len_alone: int = Field(
        description=f"Longest max-model-len that fits with the GPU to itself (share {MAX_GPU_SHARE})."
    )
    fraction_needed: float = Field(description="Smallest gpu-memory-utilization that fits max-model-len.")
    decode_tokens_per_s_bound: float | None = Field(
        description="Single-stream decode upper bound from memory bandwidth (weights read once per token)."
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def largest_max_model_len(self) -> int:
        """Longest max-model-len that fits at this share: whatever the KV cache holds."""
        return self.max_tokens_in_cache


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


def model_memory(profile: Profile, facts: ModelFacts, kv_cache_dtype: str | None = None) -> ModelMemory:
    """Weights and KV cache per token of one instance, with the profile's dtype, quantization and TP."""
    s = profile.settings
    tp = s.tensor_parallel_size
    weights, method = _weight_bytes(facts, s.quantization, s.dtype)
    kv_dtype = kv_cache_dtype or s.kv_cache_dtype
    per_token = kv_bytes_per_token(facts, kv_dtype, s.dtype)
    fixed = s.kv_cache_memory_bytes
    video = 0.0 if fixed is not None else video_startup_gib(facts, s) / tp
    return ModelMemory(
        weights_gib=weights / tp / GIB,
        weight_quantization=method,
        parameters=facts.total_params,
        runtime_overhead_gib=0.0 if fixed is not None else RUNTIME_OVERHEAD_GIB + video,
        video_startup_gib=video,
        kv_cache_dtype=kv_dtype,
        kv_bytes_per_token=per_token,
        # Tensor parallelism splits the KV heads across GPUs (a head is replicated when there are fewer heads).
        kv_bytes_per_token_per_gpu=per_token / min(tp, facts.text.num_key_value_heads),
        fixed_kv_cache_gib=None if fixed is None else fixed / GIB,
        tensor_parallel_size=tp,
    )


def video_startup_gib(facts: ModelFacts, settings: ProfileSettings) -> float:
    """What enabling video adds to the start-up peak (GiB, whole model): the largest video's vision encoder
    activations and encoder cache, beyond the largest image's (already in RUNTIME_OVERHEAD_GIB)."""
    if settings.video_limit == 0 or settings.video_max_tokens <= settings.image_max_tokens:
        return 0.0
    element = DTYPE_BYTES.get(settings.dtype, DTYPE_BYTES[facts.dtype])
    v, t = facts.vision, facts.text

    def peak(tokens: int) -> float:
        patches = tokens * v.spatial_merge_size**2
        activations = patches * (4 * v.hidden_size + v.intermediate_size) * element * VIT_ACTIVATION_COPIES
        cache = max(ENCODER_CACHE_MIN_TOKENS, tokens) * t.hidden_size * (1 + len(v.deepstack_visual_indexes))
        return activations + cache * element

    return (peak(settings.video_max_tokens) - peak(settings.image_max_tokens)) / GIB


def min_useful_context(settings: ProfileSettings) -> int:
    """The shortest context worth starting: every image the profile allows at its cap, or its videos at
    theirs (a chat about a clip), whichever is more, plus text."""
    images = settings.image_limit * settings.image_max_tokens if settings.image_limit < 100 else 0
    videos = settings.video_limit * settings.video_max_tokens if settings.video_limit < 100 else 0
    return max(MIN_USEFUL_CONTEXT, max(images, videos) + CHAT_TEXT_TOKENS)


def plan_profile(
    profile: Profile,
    facts: ModelFacts,
    gpu: DetectedGpu,
    *,
    share: float | None = None,
    max_model_len: int | None = None,
    kv_cache_dtype: str | None = None,
) -> ProfilePlan:
    """The arithmetic at `share` and `max_model_len` (default: the profile's, else MAX_GPU_SHARE)."""
    s = profile.settings
    share = share if share is not None else (s.gpu_memory_utilization or MAX_GPU_SHARE)
    context = max_model_len if max_model_len is not None else s.max_model_len
    memory = model_memory(profile, facts, kv_cache_dtype)
    tokens = memory.kv_tokens(share, gpu.total_gib)
    bandwidth = gpu.kind.bandwidth_tb_s if gpu.kind else 0.0
    weight_bytes = memory.weights_gib * memory.tensor_parallel_size * GIB
    bound = (
        bandwidth * 1e12 * memory.tensor_parallel_size / weight_bytes if bandwidth and weight_bytes else None
    )
    return ProfilePlan(
        profile=profile.name,
        model=s.model,
        gpu=gpu.name,
        gpu_memory_gib=round(gpu.total_gib, 2),
        gpu_memory_utilization=share,
        tensor_parallel_size=memory.tensor_parallel_size,
        parameters=memory.parameters,
        weight_quantization=memory.weight_quantization,
        weights_gib=round(memory.weights_gib, 2),
        runtime_overhead_gib=round(memory.runtime_overhead_gib, 2),
        video_startup_gib=round(memory.video_startup_gib, 2),
        image_max_tokens=s.image_max_tokens,
        video_max_tokens=s.video_max_tokens if s.video_limit else None,
        kv_cache_dtype=memory.kv_cache_dtype,
        kv_bytes_per_token=memory.kv_bytes_per_token,
        kv_cache_gib=round(memory.kv_cache_gib(share, gpu.total_gib), 2),
        max_tokens_in_cache=tokens,
        max_model_len=context,
        max_concurrent_at_max_len=round(tokens / context, 2),
        fits=tokens >= context,
        largest_max_model_len_alone=memory.kv_tokens(MAX_GPU_SHARE, gpu.total_gib),
        fraction_needed=min(memory.share_needed(context, gpu.total_gib), 99.0),
        decode_tokens_per_s_bound=round(bound, 1) if bound else None,
    )


def total_share(fractions: Iterable[float]) -> float:
    """The GPU shares of instances on one GPU, added up (rounded: 0.55 + 0.35 is 0.9, not 0.9000000000000001)."""
    return round(sum(fractions), 3)


class RequestCost(BaseModel):
    """What one request of `tokens` tokens costs: memory, and time bounds from the data sheets."""

    tokens: int = Field(description="Prompt + answer length.")
    kv_cache_gib: float = Field(description="KV cache the request holds (whole model, all GPUs).")
    prefill_tflop: float = Field(description="Prefill work: decoder matmuls plus causal attention, TFLOP.")
    prefill_seconds_at_peak: float | None = Field(
        description="Prefill time at the GPU's dense BF16 peak: a lower bound (real kernels reach ~40-60%)."
    )
    decode_tokens_per_s_bound: float | None = Field(
        description="Decode bound at this context: weights plus the whole KV cache read once per token."
    )


def request_cost(memory: ModelMemory, facts: ModelFacts, tokens: int, gpu: DetectedGpu) -> RequestCost:
    """Prefill FLOPs = 2 x decoder weights x tokens + 2 x tokens^2 x layers x heads x head_dim (causal QK^T
    and PV); decode reads every weight and every cached token once per generated token."""
    t = facts.text
    attention = 2 * tokens**2 * t.num_hidden_layers * t.num_attention_heads * t.head_dim
    flops = 2 * facts.decoder_linear_params * tokens + attention
    kind = gpu.kind
    tp = memory.tensor_parallel_size
    peak = kind.dense_bf16_tflops * 1e12 * tp if kind and kind.dense_bf16_tflops else None
    read = memory.weights_gib * tp * GIB + tokens * memory.kv_bytes_per_token
    bandwidth = kind.bandwidth_tb_s * 1e12 * tp if kind and kind.bandwidth_tb_s else None
    return RequestCost(
        tokens=tokens,
        kv_cache_gib=round(tokens * memory.kv_bytes_per_token / GIB, 2),
        prefill_tflop=round(flops / 1e12, 1),
        prefill_seconds_at_peak=round(flops / peak, 1) if peak else None,
        decode_tokens_per_s_bound=round(bandwidth / read, 1) if bandwidth else None,
    )
