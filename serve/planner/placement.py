"""THE placement: for the instances a stack defines and the GPUs found, which GPU each runs on, its share
(gpu-memory-utilization) and its context (max-model-len), and the layout that results.

Pure: it takes profiles and GPUs and returns values, so `serve plan`, `serve check`, `serve up`, the compose
entrypoint (docker/vllm-entrypoint.sh), the gateway and the Kubernetes values all decide the same way.

The rules:
- The layout depends only on the GPUs' totals and the profiles, never on which instances happen to run, so
  starting the second model later never breaks the first. Instances share a GPU only when all of them fit at
  their full context within MAX_GPU_SHARE of it; with 2+ GPUs each gets its own GPU when that lets everyone
  start (no competing for compute); otherwise they cannot run together (one at a time, or a swap).
- The profile's max-model-len is the target. Alone, an instance takes MAX_GPU_SHARE and the longest context
  its KV cache holds, up to the target; shorter is warned, and below a useful chat (min_useful_context) the
  instance is refused with the reason.
- Sharing a GPU, the shares split MAX_GPU_SHARE in proportion to what each needs at its target context.
- Explicit values (SERVE_<FAMILY>_GPU_MEMORY_UTILIZATION / _MAX_MODEL_LEN, a share written in the profile,
  SERVE_<FAMILY>_GPU) win; they are checked and warned about when vLLM would refuse them.
- Memory held by other processes counts: vLLM refuses to start unless `share x total` is free after its own
  CUDA context. The instance being started is sized to what is free now (`starting`); without one, the
  stack's instances are simulated starting one after the other in stack order.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum

from pydantic import BaseModel, Field

from serve.config.overrides import variable_prefix
from serve.config.profile import Profile
from serve.planner.detect import IDLE_RESERVED_MIB, DetectedGpu, GpuProcess
from serve.planner.model_facts import ModelFacts, model_facts
from serve.planner.plan import (
    CUDA_CONTEXT_GIB,
    MAX_GPU_SHARE,
    SLEEPING_INSTANCE_GIB,
    ModelMemory,
    ProfilePlan,
    min_useful_context,
    model_memory,
    plan_profile,
)


class Layout(StrEnum):
    """How the instances of a stack sit on the GPUs."""

    ALONE = "alone"
    TOGETHER = "together"
    ONE_GPU_EACH = "one-gpu-each"
    CANNOT_RUN_TOGETHER = "cannot-run-together"

    @property
    def words(self) -> str:
        return _LAYOUT_WORDS[self]


_LAYOUT_WORDS = {
    Layout.ALONE: "alone on its GPU",
    Layout.TOGETHER: "together on one GPU",
    Layout.ONE_GPU_EACH: "one GPU each",
    Layout.CANNOT_RUN_TOGETHER: "cannot run together",
}


class Fit(StrEnum):
    """What an instance gets."""

    FULL = "full"  # its target context
    SHORTER = "shorter"  # a warned shorter context that still holds a useful chat
    WONT_START = "wont-start"  # explicit values vLLM will refuse: passed on as asked, with a warning
    REFUSED = "refused"  # not started: the refusal says why

    @property
    def starts(self) -> bool:
        return self in (Fit.FULL, Fit.SHORTER)


class Sizing(BaseModel):
    """A share and a context for one instance."""

    gpu_memory_utilization: float = Field(description="Share of the whole GPU.")
    max_model_len: int = Field(description="Context in tokens.")
    kv_cache_tokens: int = Field(description="Tokens the KV cache holds at this share.")
    starts: bool = Field(description="It holds at least a useful chat.")


class InstancePlacement(BaseModel):
    """Where one instance runs and what vLLM is given."""

    profile: str = Field(description="Profile name.")
    family: str = Field(description="Profile family (8b, 4b): names its SERVE_<FAMILY>_* variables.")
    gpu_indices: list[int] = Field(description="GPUs it runs on (one, or tensor-parallel-size of them).")
    gpu_name: str = Field(description="Name of its (first) GPU.")
    gpu_total_gib: float = Field(description="Memory of its (smallest) GPU, GiB.")
    target_max_model_len: int = Field(description="The context the profile asks for.")
    min_useful_context: int = Field(description="The shortest context worth starting.")
    gpu_memory_utilization: float = Field(description="The share vLLM is given.")
    max_model_len: int = Field(description="The context vLLM is given.")
    kv_cache_dtype: str | None = Field(description="--kv-cache-dtype the placement adds, if it changes it.")
    kv_cache_tokens: int = Field(description="Tokens the KV cache holds at this share.")
    fit: Fit = Field(description="What the instance gets.")
    share_from: str = Field(description="'placement', or the variable / profile file that set the share.")
    warnings: list[str] = Field(default_factory=list, description="What is not as asked, and why.")
    refusal: str | None = Field(None, description="Why it is not started (Fit.REFUSED).")
    plan: ProfilePlan = Field(description="The memory arithmetic at these values.")
    beside_sleeping: Sizing | None = Field(
        None,
        description="Layout cannot-run-together: its share and context while the other instances on its "
        f"GPU sleep (each still holding ~{SLEEPING_INSTANCE_GIB:g} GiB), for a sleep/wake swap.",
    )

    @property
    def gpu_index(self) -> int:
        return self.gpu_indices[0]

    @property
    def starts(self) -> bool:
        return self.fit.starts

    @property
    def concurrency(self) -> float:
        return self.kv_cache_tokens / self.max_model_len if self.max_model_len else 0.0

    def vllm_flags(self) -> list[str]:
        """The resolved values as vLLM flags (they win over the profile's config file)."""
        flags = [
            "--gpu-memory-utilization",
            f"{self.gpu_memory_utilization:g}",
            "--max-model-len",
            str(self.max_model_len),
        ]
        return flags + (["--kv-cache-dtype", self.kv_cache_dtype] if self.kv_cache_dtype else [])

    def environment(self) -> dict[str, str]:
        """CUDA_VISIBLE_DEVICES pins vLLM to the GPU(s) it was sized for."""
        return {"CUDA_VISIBLE_DEVICES": ",".join(str(index) for index in self.gpu_indices)}

    def where(self) -> str:
        gpus = ", ".join(str(i) for i in self.gpu_indices)
        return f"GPU{'s' if len(self.gpu_indices) > 1 else ''} {gpus} ({self.gpu_name}, {self.gpu_total_gib:.1f} GiB)"

    def line(self) -> str:
        """One line: '4b on GPU 0 (NVIDIA L4, 22.5 GiB): share 0.90, context 32,768, KV cache 66K tokens = ...'."""
        if self.fit is Fit.REFUSED:
            return f"{self.profile} on {self.where()}: refused: {self.refusal}"
        return (
            f"{self.profile} on {self.where()}: share {self.gpu_memory_utilization:.2f}, context "
            f"{self.max_model_len:,}, KV cache {self.kv_cache_tokens / 1000:.0f}K tokens = "
            f"{self.concurrency:.1f} full-context requests"
        )


class Placement(BaseModel):
    """The placement of a stack's instances on the GPUs."""

    layout: Layout = Field(description="How the instances sit on the GPUs.")
    gpus: list[DetectedGpu] = Field(description="The GPUs placed on.")
    instances: list[InstancePlacement] = Field(description="In stack order.")
    awake_together: list[list[str]] = Field(
        description="Groups of profiles that may run (be awake) at the same time; one group unless the "
        "layout is cannot-run-together, where each instance is its own group."
    )
    refusal: str | None = Field(None, description="Why the instances cannot run together, if they cannot.")

    def instance(self, profile: str) -> InstancePlacement:
        return next(i for i in self.instances if i.profile == profile)

    @property
    def all_start(self) -> bool:
        """Every instance starts, and (unless the layout says otherwise) at the same time."""
        return self.layout is not Layout.CANNOT_RUN_TOGETHER and all(i.starts for i in self.instances)

    def summary(self) -> str:
        return " + ".join(i.profile for i in self.instances) + f": {self.layout.words}"


# ------------------------------------------------------------------------------------------------ the rules


def _floor2(value: float) -> float:
    return math.floor(value * 100 + 1e-9) / 100


@dataclass(frozen=True)
class _Instance:
    """One profile with what the rules need to know about it."""

    profile: Profile
    facts: ModelFacts
    target: int
    min_context: int

    @property
    def name(self) -> str:
        return self.profile.name

    @property
    def tp(self) -> int:
        return self.profile.settings.tensor_parallel_size

    def memory_on(self, gpus: Sequence[DetectedGpu]) -> tuple[ModelMemory, str | None, list[str]]:
        """The memory model on these GPUs: FP8 KV cache only where the GPU has FP8 (compute capability 8.9+;
        on Ampere vLLM 0.32's Triton kernels fail with 'fp8e4nv not supported', vllm#26431)."""
        wanted = self.profile.settings.kv_cache_dtype
        if wanted.startswith("fp8") and any(g.kind and g.kind.supports_fp8_kv_cache is False for g in gpus):
            note = (
                f"{self.name}: {gpus[0].name} has no FP8, so the KV cache stays in the model's dtype "
                "(kv-cache-dtype auto): twice the memory per token of the FP8 cache this profile asks for"
            )
            return model_memory(self.profile, self.facts, "auto"), "auto", [note]
        return model_memory(self.profile, self.facts), None, []


@dataclass
class _Sized:
    """An instance sized on its GPU(s)."""

    inst: _Instance
    gpus: tuple[DetectedGpu, ...]
    memory: ModelMemory
    kv_flag: str | None
    share: float
    share_from: str
    context: int
    tokens: int
    fit: Fit
    warnings: list[str] = field(default_factory=list)
    refusal: str | None = None

    @property
    def total_gib(self) -> float:
        return min(g.total_gib for g in self.gpus)

    @property
    def rank(self) -> tuple[int, int]:
        return ({Fit.FULL: 3, Fit.SHORTER: 2, Fit.WONT_START: 1, Fit.REFUSED: 0}[self.fit], self.tokens)


def _gpu_words(gpus: Sequence[DetectedGpu]) -> str:
    first = gpus[0]
    label = "GPUs " + ", ".join(str(g.index) for g in gpus) if len(gpus) > 1 else f"GPU {first.index}"
    return f"{label} ({first.name}, {first.total_gib:.1f} GiB)"


def _fit(inst: _Instance, gpus: tuple[DetectedGpu, ...], share: float, share_from: str) -> _Sized:
    """The context at a given share: the target, a warned shorter one, or a refusal (or a warning when the
    user's own values cannot start)."""
    memory, kv_flag, notes = inst.memory_on(gpus)
    total = min(g.total_gib for g in gpus)
    tokens = memory.kv_tokens(share, total)
    sized = _Sized(inst, gpus, memory, kv_flag, share, share_from, inst.target, tokens, Fit.FULL, list(notes))
    where = _gpu_words(gpus)
    explicit_len = inst.profile.explicit_max_model_len
    if explicit_len is not None:
        length, variable = explicit_len
        sized.context = length
        if tokens < length:
            sized.fit = Fit.WONT_START
            sized.warnings.append(
                f"{variable}={length} cannot start: at share {share:.2f} of {where} the KV cache holds "
                f"{tokens:,} tokens (vLLM refuses a context its cache cannot hold); set it to at most "
                f"{tokens:,}, or unset it to let the placement size it"
            )
        return sized
    if tokens >= inst.target:
        return sized
    if tokens >= inst.min_context:
        sized.fit, sized.context = Fit.SHORTER, tokens
        sized.warnings.append(
            f"{inst.name}: context {tokens:,} instead of {inst.target:,}: that is what the KV cache holds at "
            f"share {share:.2f} of {where} after {memory.weights_gib:.1f} GiB of weights"
        )
        return sized
    cache = memory.kv_cache_gib(share, total)
    why = (
        f"the weights ({memory.weights_gib:.1f} GiB) and vLLM's runtime ({memory.runtime_overhead_gib:g} GiB) "
        f"do not fit in share {share:.2f} of {where} ({share * total:.1f} GiB)"
        if cache <= 0
        else f"share {share:.2f} of {where} leaves KV cache for {tokens:,} tokens, less than a useful chat "
        f"({inst.min_context:,} tokens with its images)"
    )
    if share_from != "placement" and tokens > 0:  # the user's share: it starts, with a context worth little
        sized.fit, sized.context = Fit.SHORTER, tokens
        sized.warnings.append(
            f"{share_from}={share:g}: {why}; raise it, or unset it to let the placement size it"
        )
    elif share_from != "placement":
        sized.fit, sized.context = Fit.WONT_START, 1
        sized.warnings.append(f"{share_from}={share:g} cannot start {inst.name}: {why}")
    else:
        sized.fit, sized.context, sized.refusal = Fit.REFUSED, tokens, why
    return sized


def _size_alone(inst: _Instance, gpus: tuple[DetectedGpu, ...]) -> _Sized:
    explicit = inst.profile.explicit_share
    share, source = explicit if explicit else (MAX_GPU_SHARE, "placement")
    return _fit(inst, gpus, share, source)


def _shared_cap(gpu: DetectedGpu, count: int) -> float:
    """The most `count` instances can take together on an idle GPU: each needs its share free after its
    CUDA context (the planned layout uses totals; what is free now is checked at start)."""
    idle_free = (gpu.total_mib - IDLE_RESERVED_MIB) / 1024
    return _floor2((idle_free - count * CUDA_CONTEXT_GIB) / gpu.total_gib)


def _size_shared(members: Sequence[_Instance], gpu: DetectedGpu) -> list[_Sized] | None:
    """Several instances on one GPU, each at its full context; None when they do not all fit."""
    gpus = (gpu,)
    hard = _shared_cap(gpu, len(members))
    fixed = [(m, m.profile.explicit_share) for m in members if m.profile.explicit_share]
    flexible = [m for m in members if not m.profile.explicit_share]
    fixed_total = sum(share for _, (share, _) in fixed)
    if fixed_total > hard + 1e-9:
        return None
    sized: dict[str, _Sized] = {}
    for member, (share, source) in fixed:
        result = _fit(member, gpus, share, source)
        if result.fit is not Fit.FULL:
            return None
        sized[member.name] = result
    remaining = min(MAX_GPU_SHARE, hard) - fixed_total
    needs = {}
    for member in flexible:
        memory, _, _ = member.memory_on(gpus)
        context = (member.profile.explicit_max_model_len or (member.target, ""))[0]
        needs[member.name] = (memory.need_gib(context), memory.share_needed(context, gpu.total_gib))
    if sum(share for _, share in needs.values()) > remaining + 1e-9:
        return None
    need_total = sum(gib for gib, _ in needs.values())
    for member in flexible:
        gib, minimum = needs[member.name]
        share = max(minimum, _floor2(remaining * gib / need_total))
        sized[member.name] = _fit(member, gpus, share, "placement")
    if sum(sized[m.name].share for m in flexible) > remaining + 1e-9:
        return None
    if not all(s.fit is Fit.FULL for s in sized.values()):
        return None
    return [sized[m.name] for m in members]


# ------------------------------------------------------------------------------------------ the assignment


def _options(inst: _Instance, gpus: Sequence[DetectedGpu]) -> list[int]:
    """Positions (into `gpus`) where the instance's first GPU may be: its pin, or any with room for its TP."""
    starts = list(range(len(gpus) - inst.tp + 1))
    pin = inst.profile.gpu_pin
    return starts if pin is None else [p for p in starts if gpus[p].index == pin]


def _evaluate(
    insts: Sequence[_Instance], gpus: Sequence[DetectedGpu], starts: Sequence[int]
) -> list[_Sized] | None:
    """Size one assignment; None when instances sharing a GPU do not all fit, or TP groups overlap."""
    spans = [set(range(start, start + inst.tp)) for inst, start in zip(insts, starts, strict=True)]
    for (i, a), (j, b) in itertools.combinations(enumerate(spans), 2):
        if a & b and (insts[i].tp > 1 or insts[j].tp > 1):
            return None  # a tensor-parallel instance has its GPUs to itself
    by_start: dict[int, list[_Instance]] = {}
    for inst, start in zip(insts, starts, strict=True):
        by_start.setdefault(start, []).append(inst)
    sized: dict[str, _Sized] = {}
    for start, members in by_start.items():
        if len(members) == 1:
            inst = members[0]
            sized[inst.name] = _size_alone(inst, tuple(gpus[start : start + inst.tp]))
        else:
            shared = _size_shared(members, gpus[start])
            if shared is None:
                return None
            sized.update({s.inst.name: s for s in shared})
    return [sized[inst.name] for inst in insts]


def _score(sized: Sequence[_Sized], starts: Sequence[int]) -> tuple:
    everyone = all(s.fit is not Fit.REFUSED for s in sized)  # the user's own failing values still count
    full = sum(s.fit is Fit.FULL for s in sized)
    spread = len(set(starts))
    tokens = sum(s.tokens for s in sized)
    return (everyone, full, spread, tokens, tuple(-p for p in starts))


def _layout(insts: Sequence[_Instance], starts: Sequence[int]) -> Layout:
    if len(insts) == 1:
        return Layout.ALONE
    if len(set(starts)) == len(starts):
        return Layout.ONE_GPU_EACH
    return Layout.TOGETHER


def _unknown_pin(inst: _Instance, gpus: Sequence[DetectedGpu]) -> _Sized:
    known = ", ".join(str(g.index) for g in gpus)
    variable = inst.profile.overrides.gpu_variable
    sized = _Sized(inst, (gpus[0],), *inst.memory_on(gpus[:1])[:2], 0.0, "placement", 0, 0, Fit.REFUSED)
    sized.refusal = (
        f"{variable}={inst.profile.gpu_pin} names no GPU with room for it (GPUs here: {known}"
        f"{f'; tensor-parallel-size {inst.tp} needs {inst.tp} GPUs from there' if inst.tp > 1 else ''}); "
        f"set {variable} to one of them or leave it empty"
    )
    return sized


def _best_alone(inst: _Instance, gpus: Sequence[DetectedGpu]) -> tuple[int | None, _Sized]:
    """The instance on the GPU that suits it best when it has the GPU to itself."""
    options = _options(inst, gpus)
    if not options:
        return None, _unknown_pin(inst, gpus)
    results = [(p, _size_alone(inst, tuple(gpus[p : p + inst.tp]))) for p in options]
    return max(results, key=lambda item: (item[1].rank, -item[0]))


# ------------------------------------------------------------------------------------ free memory right now


def _held_words(gpu: DetectedGpu, processes: Sequence[GpuProcess]) -> str:
    who = (
        "; ".join(p.describe() for p in processes)
        if processes
        else "nvidia-smi names no process (inside a container it often cannot: run nvidia-smi on the host)"
    )
    return f"GPU {gpu.index} ({gpu.name}) has {gpu.free_gib:.1f} GiB free, {gpu.in_use_gib:.1f} GiB in use: {who}"


def _free_share(gpu: DetectedGpu, held_gib: float) -> float:
    return max(0.0, _floor2((gpu.free_gib - held_gib - CUDA_CONTEXT_GIB) / gpu.total_gib))


def _apply_free_memory(
    sized: list[_Sized], layout: Layout, starting: str | None, processes: Sequence[GpuProcess]
) -> list[_Sized]:
    """Size to what is free: the instance being started against free memory now, or (no `starting`) each
    instance as if started after the previous ones of its GPU held their shares."""
    held: dict[int, float] = {}
    result = []
    for s in sized:
        if s.fit is Fit.REFUSED or (starting is not None and s.inst.name != starting):
            result.append(s)
            continue
        cap_gpu = min(s.gpus, key=lambda g: _free_share(g, held.get(g.index, 0.0)))
        cap = _free_share(cap_gpu, held.get(cap_gpu.index, 0.0))
        if s.share > cap + 1e-9:
            s = _shrink(s, cap, _held_words(cap_gpu, processes))
        result.append(s)
        if starting is None and layout is not Layout.CANNOT_RUN_TOGETHER and s.fit is not Fit.REFUSED:
            for gpu in s.gpus:
                held[gpu.index] = held.get(gpu.index, 0.0) + s.share * gpu.total_gib + CUDA_CONTEXT_GIB
    return result


def _shrink(s: _Sized, cap: float, held: str) -> _Sized:
    asked = f"share {s.share:.2f} needs {s.share * s.total_gib:.1f} GiB free on top of its CUDA context"
    if s.share_from != "placement":
        s.fit = Fit.WONT_START
        s.warnings.append(f"{s.share_from}={s.share:g} cannot start {s.inst.name} now: {asked}; {held}")
        return s
    smaller = _fit(s.inst, s.gpus, cap, "placement")
    if smaller.fit is Fit.REFUSED:
        smaller.refusal = f"not enough free GPU memory: {asked}, at most {cap:.2f} fits now; {held}"
    elif smaller.fit is Fit.FULL or smaller.fit is Fit.SHORTER:
        smaller.warnings.insert(0, f"{s.inst.name}: share {cap:.2f} instead of {s.share:.2f}: {held}")
    return smaller


# ------------------------------------------------------------------------------------------------- results


def _beside_sleeping(s: _Sized, sleepers: int) -> Sizing:
    total = s.total_gib
    share = (
        s.share
        if s.share_from != "placement"
        else _floor2(s.share - sleepers * SLEEPING_INSTANCE_GIB / total)
    )
    tokens = s.memory.kv_tokens(share, total)
    context = min(s.context if s.share_from != "placement" else s.inst.target, tokens)
    return Sizing(
        gpu_memory_utilization=share,
        max_model_len=context,
        kv_cache_tokens=tokens,
        starts=tokens >= min(s.inst.target, s.inst.min_context),
    )


def _result(s: _Sized, beside_sleeping: Sizing | None = None) -> InstancePlacement:
    gpu = s.gpus[0]
    plan = plan_profile(
        s.inst.profile,
        s.inst.facts,
        min(s.gpus, key=lambda g: g.total_mib),
        share=s.share or None,
        max_model_len=max(s.context, 1),
        kv_cache_dtype=s.kv_flag,
    )
    return InstancePlacement(
        profile=s.inst.name,
        family=s.inst.profile.family,
        gpu_indices=[g.index for g in s.gpus],
        gpu_name=gpu.name,
        gpu_total_gib=s.total_gib,
        target_max_model_len=s.inst.target,
        min_useful_context=s.inst.min_context,
        gpu_memory_utilization=s.share,
        max_model_len=s.context,
        kv_cache_dtype=s.kv_flag,
        kv_cache_tokens=s.tokens,
        fit=s.fit,
        share_from=s.share_from,
        warnings=s.warnings,
        refusal=s.refusal,
        plan=plan,
        beside_sleeping=beside_sleeping,
    )


def _together_refusal(sized: Sequence[_Sized], gpus: Sequence[DetectedGpu]) -> str:
    names = " and ".join(s.inst.name for s in sized)
    needs = " + ".join(f"{s.inst.name} {s.memory.need_gib(s.inst.target):.1f} GiB" for s in sized)
    gpu_words = (
        _gpu_words(gpus[:1]) if len(gpus) == 1 else f"{len(gpus)} GPUs ({', '.join(g.name for g in gpus)})"
    )
    return (
        f"{names} cannot run at the same time on {gpu_words}: at their full context they need {needs} "
        f"inside {MAX_GPU_SHARE:g} of a GPU ({MAX_GPU_SHARE * gpus[0].total_gib:.1f} GiB here)"
    )


def place(
    profiles: Sequence[Profile],
    gpus: Sequence[DetectedGpu],
    *,
    starting: str | None = None,
    processes: Sequence[GpuProcess] = (),
) -> Placement:
    """Place the stack's instances (in stack order: the first starts first) on these GPUs."""
    if not profiles or not gpus:
        raise ValueError("place() needs at least one profile and one GPU")
    insts = [
        _Instance(
            profile=p,
            facts=(facts := model_facts(p.settings.model)),
            target=min(p.settings.max_model_len, facts.max_context),
            min_context=min_useful_context(p.settings),
        )
        for p in profiles
    ]
    options = [_options(inst, gpus) for inst in insts]
    candidates = []
    if all(options):
        for starts in itertools.product(*options):
            sized = _evaluate(insts, gpus, starts)
            if sized is not None:
                candidates.append((_score(sized, starts), starts, sized))
    best = max(candidates, key=lambda c: c[0]) if candidates else None
    refusal = None
    if best is not None and (best[0][0] or len(insts) == 1):
        _, starts, sized = best
        layout = _layout(insts, starts)
        sleepers: dict[int, int] = {}
    else:
        alone = [_best_alone(inst, gpus) for inst in insts]
        layout = Layout.CANNOT_RUN_TOGETHER
        sized = [s for _, s in alone]
        starts = tuple(p if p is not None else -1 for p, _ in alone)
        sleepers = {p: starts.count(p) - 1 for p in set(starts)}
        refusal = _together_refusal(sized, gpus)
    sized = _apply_free_memory(list(sized), layout, starting, processes)
    results = []
    for position, s in zip(starts, sized, strict=True):
        beside = _beside_sleeping(s, sleepers[position]) if sleepers.get(position) and s.fit.starts else None
        results.append(_result(s, beside))
    groups = (
        [[i.profile for i in results]]
        if layout is not Layout.CANNOT_RUN_TOGETHER
        else [[i.profile] for i in results]
    )
    return Placement(
        layout=layout, gpus=list(gpus), instances=results, awake_together=groups, refusal=refusal
    )


def family_variable(profile: str | InstancePlacement, suffix: str) -> str:
    """SERVE_<FAMILY>_<SUFFIX> for a profile name or a placed instance."""
    family = profile.family if isinstance(profile, InstancePlacement) else profile.split("-", 1)[0]
    return variable_prefix(family) + suffix
