"""`serve plan`: the placement on this machine's GPUs (or the ones named), before any weights are downloaded."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from serve.cli.arguments import add_gpu_options, gpu_survey, load, settings_environ
from serve.planner.gpus import GPUS
from serve.planner.report import render_placement
from serve.planner.resolve import Resolution, loader, resolve, stack_profile_names

NAME = "plan"


def register(sub: argparse._SubParsersAction) -> None:
    plan = sub.add_parser(
        NAME,
        help="where each model runs, its GPU share and context, and what fits, before any download",
        description="Places the profiles on the GPUs nvidia-smi reports (or the ones given with --gpu / "
        "$SERVE_GPU) exactly as serve up and the compose entrypoint will: which GPU, the share, the "
        "context, and whether they run together. Exit code 0: everything starts (warnings included); 1: "
        "something does not; 2: no GPU to plan for.",
    )
    plan.add_argument(
        "profiles",
        nargs="*",
        help="profile names or files, in start order (default: the stack, $SERVE_8B_PROFILE and "
        "$SERVE_4B_PROFILE, as docker compose runs them)",
    )
    add_gpu_options(plan)
    plan.add_argument("--json", action="store_true", help="print one JSON object")


def as_json(resolution: Resolution) -> dict:
    placement = resolution.placement
    assert placement is not None
    return {
        "layout": placement.layout.value,
        "gpus": [gpu.model_dump(exclude={"kind"}) for gpu in placement.gpus],
        "gpu_source": resolution.survey.source.value if resolution.survey.source else None,
        "awake_together": placement.awake_together,
        "runs_together": placement.all_start,
        "refusal": placement.refusal,
        "alternatives": resolution.alternatives,
        "profiles": [
            {
                **i.plan.model_dump(),
                "gpu_index": i.gpu_index,
                "gpu_indices": i.gpu_indices,
                "gpu_memory_utilization": i.gpu_memory_utilization,
                "max_model_len": i.max_model_len,
                "target_max_model_len": i.target_max_model_len,
                "kv_cache_tokens": i.kv_cache_tokens,
                "fit": i.fit.value,
                "starts": i.starts,
                "share_from": i.share_from,
                "vllm_flags": i.vllm_flags(),
                "warnings": i.warnings,
                "refusal": i.refusal,
                "beside_sleeping": i.beside_sleeping.model_dump() if i.beside_sleeping else None,
            }
            for i in placement.instances
        ],
    }


def run(args: argparse.Namespace, out: Console) -> int:
    environ = settings_environ()
    names = args.profiles or stack_profile_names(environ)
    profiles = [load(name, args.profiles_dir, environ) for name in names]
    survey = gpu_survey(args, environ)
    if not survey.found:
        err = Console(stderr=True, soft_wrap=True)
        err.print(
            f"error: {survey.describe()}: nothing to plan for. Name the GPU with --gpu NAME ({', '.join(GPUS)}; "
            "2xl4 for two), --gpu-memory-gib N, or SERVE_GPU.",
            highlight=False,
            markup=False,
        )
        return 2
    resolution = resolve(profiles, survey, load=loader(args.profiles_dir, environ))
    if args.json:
        print(json.dumps(as_json(resolution), indent=2))
    else:
        render_placement(out, resolution)
    return 0 if resolution.runnable else 1
