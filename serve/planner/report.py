"""How `serve plan` shows a plan: a table, a bar of the GPU's memory, and what to change when it does not fit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import cycle

from rich.console import Console
from rich.table import Table
from rich.text import Text

from serve.config.overrides import variable_prefix
from serve.config.profile import family_of
from serve.planner.plan import ALONE_FRACTION, ProfilePlan, TogetherPlan

GIB_FMT = "{:.2f} GiB"
BAR_WIDTH = 64
# One colour per profile on the bar; weights solid, overhead and KV cache lighter shades of it.
PROFILE_COLOURS = ("cyan", "magenta", "yellow", "blue")
WEIGHTS, OVERHEAD, KV_CACHE, UNUSED = "█", "▓", "░", "·"


def plan_table(plans: list[ProfilePlan]) -> Table:
    table = Table(title=f"Memory plan on {plans[0].gpu} ({plans[0].gpu_memory_gib:g} GiB per GPU)")
    table.add_column("")
    for plan in plans:
        table.add_column(plan.profile, justify="right")
    rows: list[tuple[str, Callable[[ProfilePlan], object]]] = [
        ("model", lambda p: p.model),
        ("GPU share (gpu-memory-utilization)", lambda p: f"{p.gpu_memory_utilization:g}"),
        ("tensor parallel GPUs", lambda p: p.tensor_parallel_size),
        ("parameters", lambda p: f"{p.parameters / 1e9:.2f} B"),
        (
            "weights",
            lambda p: (
                GIB_FMT.format(p.weights_gib)
                + (f" ({p.weight_quantization})" if p.weight_quantization else "")
            ),
        ),
        ("runtime overhead (estimate)", lambda p: GIB_FMT.format(p.runtime_overhead_gib)),
        ("KV cache", lambda p: GIB_FMT.format(p.kv_cache_gib)),
        ("KV bytes per token", lambda p: f"{p.kv_bytes_per_token:,}"),
        ("tokens in KV cache", lambda p: f"{p.max_tokens_in_cache:,}"),
        ("max-model-len", lambda p: f"{p.max_model_len:,}"),
        ("requests at max-model-len", lambda p: f"{p.max_concurrent_at_max_len:g}"),
        ("fits", lambda p: "[green]yes[/]" if p.fits else "[red]no[/]"),
        (
            "decode bound, 1 stream",
            lambda p: f"{p.decode_tokens_per_s_bound:g} tok/s" if p.decode_tokens_per_s_bound else "-",
        ),
    ]
    for label, value in rows:
        table.add_row(label, *(str(value(p)) for p in plans))
    return table


def advice(plan: ProfilePlan) -> str:
    """What to change, as the variables to set, when a profile does not fit."""
    if plan.fits:
        return f"{plan.profile}: fits."
    prefix = variable_prefix(family_of(plan.profile))
    options = []
    if plan.largest_max_model_len:
        options.append(f"{prefix}MAX_MODEL_LEN={plan.largest_max_model_len} (the longest this share holds)")
    if plan.fraction_needed <= ALONE_FRACTION:  # above it the CUDA context and driver get squeezed
        options.append(
            f"{prefix}GPU_MEMORY_UTILIZATION={plan.fraction_needed:g} (when the GPU is not shared)"
        )
    elif plan.largest_max_model_len_alone:
        options.append(
            f"alone on the GPU, {prefix}GPU_MEMORY_UTILIZATION={ALONE_FRACTION:g} with "
            f"{prefix}MAX_MODEL_LEN={plan.largest_max_model_len_alone}"
        )
    if plan.weight_quantization is None:
        options.append("an FP8 profile")
    if "-8B-" in plan.model:
        options.append("the 4B model")
    return (
        f"{plan.profile}: does NOT fit at max-model-len {plan.max_model_len:,} on this GPU. "
        f"Options: {'; '.join(options) or 'a GPU with more memory'}."
    )


def _coloured(plans: Sequence[ProfilePlan]) -> list[tuple[str, ProfilePlan]]:
    """Each profile with its colour on the bar and in the legend."""
    return list(zip(cycle(PROFILE_COLOURS), plans))


def memory_bar(plans: Sequence[ProfilePlan]) -> Text:
    """One GPU as a bar: each profile's weights, overhead and KV cache, then what no profile uses."""
    total = plans[0].gpu_memory_gib
    segments: list[tuple[float, str, str]] = []
    for colour, plan in _coloured(plans):
        segments += [
            (plan.weights_gib, WEIGHTS, colour),
            (plan.runtime_overhead_gib, OVERHEAD, colour),
            (max(plan.kv_cache_gib, 0.0), KV_CACHE, colour),
        ]
    used = sum(size for size, _, _ in segments)
    scale = BAR_WIDTH / max(total, used)
    bar = Text("|")
    for size, glyph, colour in segments:
        bar.append(glyph * round(size * scale), style=colour)
    bar.append(UNUSED * max(0, BAR_WIDTH - len(bar) + 1), style="dim")
    bar.append(f"| {total:g} GiB")
    if used > total:
        bar.append(f"  over by {used - total:.1f} GiB", style="bold red")
    return bar


def bar_legend(plans: Sequence[ProfilePlan]) -> Text:
    legend = Text()
    for colour, plan in _coloured(plans):
        legend.append(f" {plan.profile}: ", style=f"bold {colour}")
        legend.append(
            f"{WEIGHTS} weights {plan.weights_gib:g}  {OVERHEAD} overhead {plan.runtime_overhead_gib:g}  "
        )
        legend.append(f"{KV_CACHE} KV cache {max(plan.kv_cache_gib, 0):g} GiB ")
    legend.append(f" {UNUSED} unused", style="dim")
    for plan in plans:
        share = plan.gpu_memory_gib * plan.gpu_memory_utilization
        if plan.kv_cache_gib < 0:
            legend.append(
                f"\n {plan.profile}: weights and overhead exceed its {share:.1f} GiB share by {-plan.kv_cache_gib:.1f} GiB",
                style="bold red",
            )
    return legend


def render_plan(out: Console, plans: Sequence[ProfilePlan], together: TogetherPlan | None) -> None:
    out.print(plan_table(list(plans)))
    out.print(memory_bar(plans))
    out.print(bar_legend(plans))
    for plan in plans:
        out.print(advice(plan), highlight=False)
    if together is not None:
        verdict = (
            "fit together on one GPU"
            if together.fits
            else "do NOT fit together: " + "; ".join(together.reasons)
        )
        out.print(
            f"{' + '.join(together.profiles)} (shares add up to {together.total_fraction:g}): {verdict}",
            highlight=False,
        )
