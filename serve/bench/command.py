"""`serve bench`: benchmark one or more endpoints with the same seeded multimodal workload, one after another.

Every endpoint is checked before anything is sent (reachable, key accepted, model served), so a typo
fails in a second with one line instead of after a long run. Endpoints then run one at a time, so they
never compete for the client's CPU or a shared GPU, and the results are printed side by side.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import importlib.metadata
import os
import platform
import sys
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from serve.bench.metrics import BenchResult, EndpointMetrics, RequestSample, Versions, compare, summarize
from serve.bench.report import render_results
from serve.bench.runner import SetupError, Target, preflight, run_endpoint
from serve.bench.workload import Workload, WorkloadSpec, build_workload

SECRET_OPTIONS = ("--api-key",)


@dataclass(frozen=True)
class BenchOptions:
    targets: list[Target]
    spec: WorkloadSpec
    timeout: float
    json_out: Path | None
    chart_out: Path | None
    command: list[str]


def redact(argv: list[str]) -> list[str]:
    """The command line with the value of every secret option replaced, in both spellings."""
    redacted, hide_next = [], False
    for arg in argv:
        if hide_next:
            redacted.append("***")
            hide_next = False
        elif arg in SECRET_OPTIONS:
            redacted.append(arg)
            hide_next = True
        elif arg.startswith(tuple(f"{option}=" for option in SECRET_OPTIONS)):
            redacted.append(arg.split("=", 1)[0] + "=***")
        else:
            redacted.append(arg)
    return redacted


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _notes(options: BenchOptions, workload: Workload) -> list[str]:
    notes = []
    if workload.image_reuse:
        notes.append(
            f"{workload.image_reuse} image(s) were sent more than once ({options.spec.image_dir} has too few "
            "images): vLLM's caches make repeated images faster than new ones"
        )
    urls = [target.base_url.rstrip("/") for target in options.targets]
    if len(set(urls)) < len(urls):
        notes.append(
            "the same URL is benchmarked more than once: later runs find the images in the server's caches"
        )
    return notes


class _EndpointBar:
    """One progress bar per endpoint: "warm-up" until measuring starts, then requests done and failed."""

    def __init__(self, progress: Progress, name: str, total: int) -> None:
        self.progress, self.name, self.failed = progress, name, 0
        self.task = progress.add_task(f"{escape(name)}: warm-up", total=total, failed=0)

    def measuring(self) -> None:
        self.progress.update(self.task, description=escape(self.name))

    def done(self, sample: RequestSample) -> None:
        self.failed += 0 if sample.ok else 1
        self.progress.update(self.task, advance=1, failed=self.failed)


async def _run(options: BenchOptions, err: Console) -> tuple[list[EndpointMetrics], list[str]]:
    resolved = [await preflight(target) for target in options.targets]
    with err.status("building the workload (images, prompts)"):
        try:
            workload = build_workload(options.spec)
        except (OSError, ValueError) as exc:
            raise SetupError(str(exc)) from exc
    notes = _notes(options, workload)
    results = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err) as progress:
        for target, (model, version) in zip(options.targets, resolved, strict=True):
            bar = _EndpointBar(progress, target.name, len(workload.measured))
            run = await run_endpoint(
                target,
                model,
                workload,
                timeout=options.timeout,
                on_measuring=bar.measuring,
                on_done=bar.done,
            )
            if run.warmup_failures:
                notes.append(
                    f"{target.name}: {run.warmup_failures} warm-up request(s) failed: {run.warmup_error}"
                )
            results.append(
                summarize(
                    name=target.name,
                    base_url=target.base_url,
                    model=model,
                    samples=run.samples,
                    duration_s=run.duration_s,
                    server_version=version,
                )
            )
    return results, notes


def run_bench(options: BenchOptions, out: Console, err: Console) -> int:
    """0: every request succeeded; 1: some failed (results still written); 2: could not start."""
    started = dt.datetime.now(dt.UTC)
    try:
        endpoints, notes = asyncio.run(_run(options, err))
    except SetupError as exc:
        err.print(f"error: {exc}", highlight=False, markup=False)
        return 2
    except KeyboardInterrupt:
        err.print("interrupted: no results written", highlight=False)
        return 130
    result = BenchResult(
        timestamp=started.isoformat(timespec="seconds"),
        command=redact(options.command),
        machine=f"{platform.platform()}, {os.cpu_count()} CPUs",
        versions=Versions(
            python=sys.version.split()[0], serve=_version("qwen3-vl-stack"), openai=_version("openai")
        ),
        workload=options.spec,
        notes=notes,
        endpoints=endpoints,
        comparisons=[compare(endpoint, endpoints[0]) for endpoint in endpoints[1:]],
    )
    render_results(out, result)
    if options.json_out is not None:
        options.json_out.parent.mkdir(parents=True, exist_ok=True)
        options.json_out.write_text(result.model_dump_json(indent=2) + "\n")
        out.print(f"results: {options.json_out}", highlight=False, markup=False)
    if options.chart_out is not None:
        from serve.bench.chart import write_chart

        write_chart(result, options.chart_out)
        out.print(f"chart: {options.chart_out}", highlight=False, markup=False)
    return 0 if all(endpoint.failures == 0 for endpoint in endpoints) else 1
