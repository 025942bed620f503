"""Paper numbers for GPUs we cannot run here: `serve plan`'s arithmetic for each profile on each GPU.

Run from the repository root:  .venv/bin/python -m benchmarks.gpu_table
Prints the Markdown table the README shows and writes benchmarks/results/gpu_table.json. Each model is
planned alone on the GPU at gpu-memory-utilization 0.9 (what you would set for one model per GPU);
"decode bound" is the memory-bandwidth upper bound for one stream (every weight read once per token),
"KV cache" the tokens the rest holds, and "32K" whether the profile's 32,768-token context fits.
"""

from __future__ import annotations

import json

from benchmarks.common import RESULTS_DIR, command_line
from serve.config.profile import family_of, load_profile, resolve_profile_path
from serve.planner.gpus import GPUS
from serve.planner.model_facts import model_facts
from serve.planner.plan import ProfilePlan, plan_profile

GPU_KEYS = ("h100", "a100-80gb", "a100-40gb", "l40s", "l4", "rtx4090")
PROFILES = ("8b", "8b-fp8", "4b", "4b-fp8")
ALONE_SHARE = "0.9"


def plan(profile_name: str, gpu_key: str) -> ProfilePlan:
    variable = f"SERVE_{family_of(profile_name).upper()}_GPU_MEMORY_UTILIZATION"
    profile = load_profile(resolve_profile_path(profile_name, None), {variable: ALONE_SHARE})
    return plan_profile(profile, model_facts(profile.settings.model), GPUS[gpu_key])


def cell(result: ProfilePlan) -> str:
    bound = f"≤{result.decode_tokens_per_s_bound:.0f} tok/s" if result.decode_tokens_per_s_bound else "–"
    if result.max_tokens_in_cache <= 0:
        return f"{bound}, weights do not fit"
    context = "32K ✓" if result.fits else f"32K ✗ (max {result.largest_max_model_len:,})"
    return f"{bound}, {result.max_tokens_in_cache / 1000:.0f}K tokens, {context}"


def main() -> None:
    plans = {gpu: {name: plan(name, gpu) for name in PROFILES} for gpu in GPU_KEYS}
    header = "| GPU | " + " | ".join(f"`{name}`" for name in PROFILES) + " |"
    lines = [header, "|---" * (len(PROFILES) + 1) + "|"]
    for gpu, row in plans.items():
        lines.append(f"| {GPUS[gpu].label} | " + " | ".join(cell(row[name]) for name in PROFILES) + " |")
    table = "\n".join(lines)
    print(table)
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "gpu_table.json").write_text(
        json.dumps(
            {
                "command": command_line("benchmarks.gpu_table"),
                "share": float(ALONE_SHARE),
                "markdown": table,
                "plans": {gpu: {n: p.model_dump() for n, p in row.items()} for gpu, row in plans.items()},
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
