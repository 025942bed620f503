"""How `serve plan` shows a placement: the GPUs found, a table per instance, a bar of each GPU's memory, the
verdict, and what to change; plus the "where the defaults fit" lines of the profiles."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import cycle

from rich.console import Console
from rich.table import Table
from rich.text import Text

from serve.config.profile import Profile
from serve.planner.detect import DetectedGpu
from serve.planner.gpus import GPUS
from serve.planner.placement import Fit, InstancePlacement, Layout, Placement, place
from serve.planner.resolve import Resolution

GIB_FMT = "{:.2f} GiB"
BAR_WIDTH = 64
# One colour per profile on the bar; weights solid, overhead and KV cache lighter shades of it.
PROFILE_COLOURS = ("cyan", "magenta", "yellow", "blue")
WEIGHTS, OVERHEAD, KV_CACHE, UNUSED = "█", "▓", "░", "·"
FIT_WORDS = {
    Fit.FULL: "[green]yes[/]",
    Fit.SHORTER: "[yellow]shorter context[/]",
    Fit.WONT_START: "[red]no: your values[/]",
    Fit.REFUSED: "[red]no[/]",
}


def _share(i: InstancePlacement) -> str:
    source = "" if i.share_from == "placement" else f" ({i.share_from.rsplit('/', 1)[-1]})"
    return f"{i.gpu_memory_utilization:.2f}{source}"


def _media_budget(i: InstancePlacement) -> str:
    video = f"{i.plan.video_max_tokens:,}" if i.plan.video_max_tokens else "no video"
    return f"{i.plan.image_max_tokens:,} / {video}"


def placement_table(placement: Placement) -> Table:
    table = Table(title=f"Placement: {placement.summary()}")
    table.add_column("")
    for instance in placement.instances:
        table.add_column(instance.profile, justify="right")
    rows: list[tuple[str, Callable[[InstancePlacement], object]]] = [
        ("model", lambda i: i.plan.model),
        ("GPU", lambda i: ", ".join(str(x) for x in i.gpu_indices) + f" ({i.gpu_name})"),
        ("GPU share (gpu-memory-utilization)", _share),
        ("context (max-model-len)", lambda i: f"{i.max_model_len:,}"),
        ("the profile asks for", lambda i: f"{i.target_max_model_len:,}"),
        ("tensor parallel GPUs", lambda i: i.plan.tensor_parallel_size),
        ("parameters", lambda i: f"{i.plan.parameters / 1e9:.2f} B"),
        (
            "weights",
            lambda i: (
                GIB_FMT.format(i.plan.weights_gib)
                + (f" ({i.plan.weight_quantization})" if i.plan.weight_quantization else "")
            ),
        ),
        ("runtime overhead (estimate)", lambda i: GIB_FMT.format(i.plan.runtime_overhead_gib)),
        ("  of it: the largest video", lambda i: GIB_FMT.format(i.plan.video_startup_gib)),
        ("tokens per image / per video", _media_budget),
        ("KV cache", lambda i: GIB_FMT.format(i.plan.kv_cache_gib)),
        ("KV cache dtype", lambda i: i.plan.kv_cache_dtype),
        ("KV bytes per token", lambda i: f"{i.plan.kv_bytes_per_token:,}"),
        ("tokens in KV cache", lambda i: f"{i.kv_cache_tokens:,}"),
        ("requests at this context", lambda i: f"{i.concurrency:.2f}"),
        ("starts", lambda i: FIT_WORDS[i.fit]),
        (
            "decode bound, 1 stream",
            lambda i: (
                f"{i.plan.decode_tokens_per_s_bound:g} tok/s" if i.plan.decode_tokens_per_s_bound else "-"
            ),
        ),
    ]
    for label, value in rows:
        table.add_row(label, *(str(value(i)) for i in placement.instances))
    return table


def memory_bar(gpu: DetectedGpu, instances: Sequence[InstancePlacement]) -> Text:
    """One GPU as a bar: each instance's weights, overhead and KV cache, then what no instance uses."""
    total = gpu.total_gib
    segments: list[tuple[float, str, str]] = []
    for colour, instance in zip(cycle(PROFILE_COLOURS), instances):
        plan = instance.plan
        segments += [
            (plan.weights_gib, WEIGHTS, colour),
            (plan.runtime_overhead_gib, OVERHEAD, colour),
            (max(plan.kv_cache_gib, 0.0), KV_CACHE, colour),
        ]
    used = sum(size for size, _, _ in segments)
    scale = BAR_WIDTH / max(total, used)
    bar = Text(f"GPU {gpu.index} |")
    start = len(bar)
    for size, glyph, colour in segments:
        bar.append(glyph * round(size * scale), style=colour)
    bar.append(UNUSED * max(0, BAR_WIDTH - (len(bar) - start)), style="dim")
    bar.append(f"| {total:.1f} GiB")
    if used > total:
        bar.append(f"  over by {used - total:.1f} GiB", style="bold red")
    return bar


def bar_legend(instances: Sequence[InstancePlacement]) -> Text:
    legend = Text()
    for colour, instance in zip(cycle(PROFILE_COLOURS), instances):
        plan = instance.plan
        legend.append(f" {instance.profile}: ", style=f"bold {colour}")
        legend.append(
            f"{WEIGHTS} weights {plan.weights_gib:g}  {OVERHEAD} overhead {plan.runtime_overhead_gib:g}  "
        )
        legend.append(f"{KV_CACHE} KV cache {max(plan.kv_cache_gib, 0):g} GiB ")
    legend.append(f" {UNUSED} unused", style="dim")
    return legend


def verdict_lines(resolution: Resolution) -> list[str]:
    """Warnings, refusals with what to change, and the layout's verdict, as plain lines."""
    placement = resolution.placement
    assert placement is not None
    lines = []
    for instance in placement.instances:
        lines += [f"warning: {w}" for w in instance.warnings]
        if instance.fit is Fit.REFUSED:
            lines.append(f"{instance.profile}: does NOT start: {instance.refusal}.")
            if options := resolution.alternatives.get(instance.profile):
                lines.append(f"  what to change: {'; '.join(options)}.")
    if placement.layout is Layout.CANNOT_RUN_TOGETHER:
        lines.append(f"{placement.refusal}.")
        if options := resolution.alternatives.get("together"):
            lines.append(f"  what to change: {'; '.join(options)}.")
    elif len(placement.instances) > 1 and placement.all_start:
        lines.append(f"{placement.summary()}: they run at the same time.")
    return lines


def render_placement(out: Console, resolution: Resolution) -> None:
    placement = resolution.placement
    assert placement is not None
    out.print(resolution.survey.describe(), highlight=False, markup=False)
    out.print(placement_table(placement))
    for gpu in placement.gpus:
        on_it = [i for i in placement.instances if gpu.index in i.gpu_indices]
        if placement.layout is Layout.CANNOT_RUN_TOGETHER:
            for instance in on_it:  # one at a time: one bar each
                out.print(memory_bar(gpu, [instance]))
                out.print(bar_legend([instance]))
        elif on_it:
            out.print(memory_bar(gpu, on_it))
            out.print(bar_legend(on_it))
    for line in verdict_lines(resolution):
        out.print(line, highlight=False, markup=False)


# ------------------------------------------------------------------------------- "where the defaults fit"

FIT_CLASSES = tuple(GPUS)  # every known single-GPU class, smallest first
FIT_HEADER = "# Where the defaults fit (python -m serve plan {name} --gpu NAME; the GPU to itself):"


def fit_words(instance: InstancePlacement) -> str:
    """A short verdict for one instance: its context, or why not."""
    if instance.fit is Fit.FULL:
        return f"{instance.max_model_len:,}"
    if instance.fit is Fit.SHORTER:
        return f"{instance.max_model_len:,} (shorter, warned)"
    if instance.kv_cache_tokens <= 0:
        return "no (the weights do not fit)"
    return f"no (room for {instance.kv_cache_tokens:,} tokens only)"


def fit_comment(profile: Profile, partner: Profile | None) -> list[str]:
    """The profile's "where the defaults fit" block: its context on each GPU class alone, grouped, and the
    smallest class where it runs together with `partner` (the other slot) at full context."""
    verdicts = [(GPUS[key].label, fit_words(place([profile], [DetectedGpu.idle(GPUS[key])]).instances[0]))
                for key in FIT_CLASSES]  # fmt: skip
    lines = [FIT_HEADER.format(name=profile.name)]
    for words, group in _grouped(verdicts):
        lines += _wrap_labels(f"#   {words}: ", group)
    if partner is not None:
        together = next(
            (
                GPUS[key].label
                for key in FIT_CLASSES
                if place([partner, profile], [DetectedGpu.idle(GPUS[key])]).layout is Layout.TOGETHER
            ),
            None,
        )
        where = f"from {together} up" if together else "on none of these: one at a time, or one GPU each"
        lines.append(f"#   Together with {partner.name} on one GPU, both at full context: {where}.")
    return lines


def _wrap_labels(head: str, labels: Sequence[str], width: int = 110) -> list[str]:
    """`head` then the labels, comma-separated, wrapped between labels (never inside 'H100 80GB SXM')."""
    lines, line = [], head
    for i, label in enumerate(labels):
        item = label + ("," if i < len(labels) - 1 else "")
        if len(line) + len(item) > width and line.strip() not in ("#", head.strip()):
            lines.append(line.rstrip())
            line = "#     "
        line += item + " "
    return [*lines, line.rstrip()]


def _grouped(verdicts: Sequence[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    groups: list[tuple[str, list[str]]] = []
    for label, words in verdicts:
        if groups and groups[-1][0] == words:
            groups[-1][1].append(label)
        else:
            groups.append((words, [label]))
    return groups
