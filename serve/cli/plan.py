"""`serve plan`: vLLM's memory arithmetic for a GPU, before any weights are downloaded."""

from __future__ import annotations

import argparse
import json

from rich.console import Console

from serve.cli.arguments import load, positive_gib
from serve.planner.gpus import GPUS, Gpu, find_gpu
from serve.planner.model_facts import model_facts
from serve.planner.plan import TogetherPlan, plan_profile, plan_together
from serve.planner.report import render_plan

NAME = "plan"


def register(sub: argparse._SubParsersAction) -> None:
    plan = sub.add_parser(NAME, help="GPU memory plan: weights, KV cache, what fits")
    plan.add_argument("profiles", nargs="+", help="profile names (8b, 4b-fp8) or files; several = one GPU")
    gpu = plan.add_mutually_exclusive_group()
    gpu.add_argument("--gpu", default="h100", help=f"GPU kind ({', '.join(GPUS)}); default h100")
    gpu.add_argument(
        "--gpu-memory-gib", type=positive_gib, help="total memory of one GPU in GiB, instead of --gpu"
    )
    plan.add_argument("--json", action="store_true", help="print one JSON object")


def _gpu(args: argparse.Namespace) -> Gpu:
    if args.gpu_memory_gib:
        return Gpu(
            key="custom",
            label=f"{args.gpu_memory_gib:g} GiB GPU",
            memory_gib=args.gpu_memory_gib,
            bandwidth_tb_s=0,
        )
    return find_gpu(args.gpu)


def run(args: argparse.Namespace, out: Console) -> int:
    gpu = _gpu(args)
    plans = []
    for name in args.profiles:
        profile = load(name, args.profiles_dir)
        plans.append(plan_profile(profile, model_facts(profile.settings.model), gpu))
    together: TogetherPlan | None = plan_together(plans) if len(plans) > 1 else None
    if args.json:
        if together is None:
            print(plans[0].model_dump_json(indent=2))
        else:
            print(
                json.dumps(
                    {"profiles": [p.model_dump() for p in plans], "together": together.model_dump()}, indent=2
                )
            )
    else:
        render_plan(out, plans, together)
    return 0 if all(p.fits for p in plans) and (together is None or together.fits) else 1
