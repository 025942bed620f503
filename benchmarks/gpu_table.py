"""Paper numbers for GPUs we cannot run here, from the placement itself (what `python -m serve plan --gpu NAME`
prints, on an idle GPU of each class).

Run from the repository root:  .venv/bin/python -m benchmarks.gpu_table [--update]
Prints three Markdown tables and writes benchmarks/results/gpu_table.json; --update also writes them into
README.md (between the `<!-- gpu_table:NAME -->` markers) and regenerates the "Where the defaults fit" blocks
of profiles/*.yaml. tests/test_gpu_table.py fails when any of them disagrees with the planner.

1. quickstart: per GPU class, what `docker compose up` (4b), `--profile 8b` and both together do: the
   stack's placement (8b + 4b, as both compose services plan it).
2. alone: each profile with the GPU to itself: the decode bound from memory bandwidth, the KV cache, and
   the context the placement gives it.
3. long: what one request at the -long profiles' context costs, on the GPUs with data-sheet figures.
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import REPO_ROOT, RESULTS_DIR, command_line
from serve.config.profile import Profile, family_of, load_profile, profile_paths, resolve_profile_path
from serve.planner.detect import gpus_named
from serve.planner.gpus import GPUS
from serve.planner.model_facts import model_facts
from serve.planner.placement import Fit, InstancePlacement, Layout, Placement, place
from serve.planner.plan import RequestCost, model_memory, request_cost
from serve.planner.report import FIT_CLASSES, FIT_HEADER, fit_comment
from serve.planner.resolve import STACK_FAMILIES

PROFILES_DIR = REPO_ROOT / "profiles"
README = REPO_ROOT / "README.md"
QUICKSTART_GPUS = (*FIT_CLASSES, "2xl4", "2xrtx4090")
ALONE_PROFILES = ("8b", "8b-fp8", "8b-long", "4b", "4b-fp8", "4b-long")
LONG_GPUS = ("l4", "rtx4090", "l40s", "a100-80gb", "h100", "h200")
LONG_PROFILES = ("8b-long", "4b-long")


def load(name: str) -> Profile:
    """A shipped profile as it is, without the developer's .env or environment."""
    return load_profile(resolve_profile_path(name, PROFILES_DIR), {})


def gpu_label(spec: str) -> str:
    gpus = gpus_named(spec)
    return gpus[0].name if len(gpus) == 1 else f"{len(gpus)}× {gpus[0].name}"


def stack_placement(spec: str) -> Placement:
    return place([load(name) for name in STACK_FAMILIES], gpus_named(spec))


def _fp8(name: str) -> str:
    return f"{family_of(name)}-fp8"


def instance_cell(instance: InstancePlacement, gpu_spec: str) -> str:
    if instance.fit is Fit.FULL:
        return f"✓ {instance.max_model_len:,}, share {instance.gpu_memory_utilization:.2f}"
    if instance.fit is Fit.SHORTER:
        return f"⚠ {instance.max_model_len:,} (shorter), share {instance.gpu_memory_utilization:.2f}"
    fp8 = place([load(_fp8(instance.profile))], gpus_named(gpu_spec)).instances[0]
    return f"✗ ({_fp8(instance.profile)}: {fp8.max_model_len:,})" if fp8.starts else "✗"


def together_cell(placement: Placement, gpu_spec: str) -> str:
    if placement.layout is Layout.TOGETHER:
        shares = " + ".join(f"{i.gpu_memory_utilization:.2f}" for i in placement.instances)
        return f"✓ together on one GPU ({shares})"
    if placement.layout is Layout.ONE_GPU_EACH:
        shorter = [f"{i.profile} at {i.max_model_len:,}" for i in placement.instances if i.fit is Fit.SHORTER]
        return "✓ one GPU each" + (f" ({', '.join(shorter)})" if shorter else "")
    fp8 = place([load(_fp8(name)) for name in STACK_FAMILIES], gpus_named(gpu_spec))
    hint = f"; {' + '.join(i.profile for i in fp8.instances)} {fp8.layout.words}" if fp8.all_start else ""
    return f"⇄ one awake at a time, swapped by the gateway{hint}"


def stack_summary(placement: Placement) -> dict:
    """What the quick start table is made of, per GPU class, for the results file."""
    return {
        "layout": placement.layout.value,
        "instances": [
            i.model_dump(
                include={
                    "profile",
                    "gpu_indices",
                    "gpu_memory_utilization",
                    "max_model_len",
                    "kv_cache_tokens",
                    "fit",
                },
                mode="json",
            )
            for i in placement.instances
        ],
    }


def quickstart_table() -> str:
    lines = [
        "| GPU | `docker compose up` (4b) | `--profile 8b` | `--profile 8b --profile 4b` |",
        "|---|---|---|---|",
    ]
    for spec in QUICKSTART_GPUS:
        placement = stack_placement(spec)
        cells = [instance_cell(placement.instance(name), spec) for name in ("4b", "8b")]
        lines.append(f"| {gpu_label(spec)} | {' | '.join(cells)} | {together_cell(placement, spec)} |")
    return "\n".join(lines)


def alone_cell(instance: InstancePlacement) -> str:
    bound = instance.plan.decode_tokens_per_s_bound
    speed = f"≤{bound:.0f} tok/s" if bound else "–"
    if instance.kv_cache_tokens <= 0:
        return f"{speed}, weights do not fit"
    target = f"{instance.target_max_model_len // 1024}K"
    context = (
        f"{target} ✓"
        if instance.fit is Fit.FULL
        else f"{target} ✗ (max {instance.kv_cache_tokens:,}{', warned' if instance.starts else ''})"
    )
    fp8_kv = (
        " FP8 KV"
        if instance.plan.kv_cache_dtype.startswith("fp8") and instance.profile.endswith("long")
        else ""
    )
    return f"{speed}, {instance.kv_cache_tokens / 1000:.0f}K tokens{fp8_kv}, {context}"


def alone_table() -> str:
    lines = ["| GPU | " + " | ".join(f"`{name}`" for name in ALONE_PROFILES) + " |",
             "|---" * (len(ALONE_PROFILES) + 1) + "|"]  # fmt: skip
    for key in FIT_CLASSES:
        cells = [alone_cell(place([load(name)], gpus_named(key)).instances[0]) for name in ALONE_PROFILES]
        lines.append(f"| {GPUS[key].label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


LONG_TOKENS = 262_144


def long_cost(name: str, key: str) -> tuple[InstancePlacement, RequestCost]:
    """The context the -long profile gets on this GPU, and what one 256K request costs there (with the KV
    cache dtype the placement uses on it)."""
    profile = load(name)
    gpu = gpus_named(key)[0]
    instance = place([profile], [gpu]).instances[0]
    facts = model_facts(profile.settings.model)
    return instance, request_cost(
        model_memory(profile, facts, instance.kv_cache_dtype), facts, LONG_TOKENS, gpu
    )


def long_table() -> str:
    header = "| GPU | " + " | ".join(f"`{name}` gets" for name in LONG_PROFILES)
    header += " | " + " | ".join(
        f"one 256K request, {family_of(name).upper()}: prefill, decode" for name in LONG_PROFILES
    )
    lines = [header + " |", "|---" * (1 + 2 * len(LONG_PROFILES)) + "|"]
    for key in LONG_GPUS:
        gets, costs = [], []
        for name in LONG_PROFILES:
            instance, cost = long_cost(name, key)
            gets.append(f"{instance.max_model_len:,}" + (" (shorter)" if instance.fit is Fit.SHORTER else ""))
            kv = "FP8" if instance.plan.kv_cache_dtype.startswith("fp8") else "BF16"
            costs.append(
                f"≥{cost.prefill_seconds_at_peak:.0f} s, ≤{cost.decode_tokens_per_s_bound:.0f} tok/s ({kv} KV)"
            )
        lines.append(f"| {GPUS[key].label} | " + " | ".join(gets + costs) + " |")
    return "\n".join(lines)


def long_summary() -> str:
    """One sentence on the memory and work of a 256K request, from the planner."""
    profile = load("8b-long")
    facts = model_facts(profile.settings.model)
    h100 = gpus_named("h100")[0]
    bf16 = request_cost(model_memory(profile, facts, "auto"), facts, LONG_TOKENS, h100)
    fp8 = request_cost(model_memory(profile, facts, "fp8"), facts, LONG_TOKENS, h100)
    small = request_cost(model_memory(profile, facts, "fp8"), facts, 1024, h100)
    return (
        f"One {LONG_TOKENS:,}-token request holds {bf16.kv_cache_gib:.0f} GiB of KV cache in BF16, "
        f"{fp8.kv_cache_gib:.0f} GiB with the FP8 cache (8B and 4B alike: same layers and KV heads). Its prefill "
        f"is {bf16.prefill_tflop / 1000:,.1f} PFLOP for 8B, {bf16.prefill_tflop / small.prefill_tflop / 256:,.0f}x "
        "the work per token of a short prompt (attention grows with the square of the length): at least "
        f"{fp8.prefill_seconds_at_peak:.0f} s on an H100 at its data-sheet peak, where real kernels reach "
        f"40-60 % of it; and each answer token then reads the cache once, so decoding runs at most "
        f"{fp8.decode_tokens_per_s_bound:.0f} tok/s instead of {small.decode_tokens_per_s_bound:.0f}."
    )


TABLES: dict[str, Callable[[], str]] = {
    "quickstart": quickstart_table,
    "alone": alone_table,
    "long": lambda: long_summary() + "\n\n" + long_table(),
}


def _marked(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- gpu_table:{name} -->\n)(.*?)(<!-- /gpu_table:{name} -->)", re.DOTALL)


def readme_table(text: str, name: str) -> str | None:
    """The table between the markers in README text, or None when the markers are missing."""
    match = _marked(name).search(text)
    return match.group(2).removesuffix("\n") if match else None


def partner_of(profile: Profile) -> Profile | None:
    """The profile of the other slot with the same variant (8b-fp8 <-> 4b-fp8), for the "together" line."""
    if profile.family not in STACK_FAMILIES:
        return None
    other = next(f for f in STACK_FAMILIES if f != profile.family)
    variant = profile.name.removeprefix(profile.family)
    path = PROFILES_DIR / f"{other}{variant}.yaml"
    return load(path.stem) if path.is_file() else None


def profile_fit_block(text: str) -> list[str] | None:
    """The "Where the defaults fit" lines of a profile file, or None when it has none."""
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if line.startswith(FIT_HEADER.split("(")[0])), None)
    if start is None:
        return None
    end = start + 1
    while end < len(lines) and lines[end].startswith("#   "):
        end += 1
    return lines[start:end]


def expected_fit_block(path: Path) -> list[str]:
    profile = load(path.stem)
    return fit_comment(profile, partner_of(profile))


def update_files() -> list[Path]:
    changed = []
    text = README.read_text()
    for name, build in TABLES.items():
        pattern = _marked(name)
        if not pattern.search(text):
            raise SystemExit(f"README.md has no <!-- gpu_table:{name} --> markers")
        text = pattern.sub(lambda m, b=build: m.group(1) + b() + "\n" + m.group(3), text)
    if text != README.read_text():
        README.write_text(text)
        changed.append(README)
    for path in profile_paths(PROFILES_DIR):
        content = path.read_text()
        block = profile_fit_block(content)
        if block is None:
            continue
        new = content.replace("\n".join(block), "\n".join(expected_fit_block(path)))
        if new != content:
            path.write_text(new)
            changed.append(path)
    return changed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--update", action="store_true", help="also write README.md and the profile comments")
    args = parser.parse_args()
    tables = {name: build() for name, build in TABLES.items()}
    for name, table in tables.items():
        print(f"{name}:\n{table}\n")
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "gpu_table.json").write_text(
        json.dumps(
            {
                "command": command_line("benchmarks.gpu_table"),
                "markdown": tables,
                "stack": {spec: stack_summary(stack_placement(spec)) for spec in QUICKSTART_GPUS},
            },
            indent=2,
        )
        + "\n"
    )
    if args.update:
        for path in update_files():
            print(f"updated {path.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
