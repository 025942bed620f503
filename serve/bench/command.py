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
from serve.bench.runner import ClientKind, SetupError, Target, preflight, run_endpoint
from serve.bench.workload import Workload, WorkloadSpec, build_workload

SECRET_OPTIONS = ("--api-key",)
# A single asyncio loop busy this much of the time reads chunks late: what is measured then includes
# waiting for the client (a heuristic threshold; at 100 % the loop never waits for the server at all).
CLIENT_SATURATED_SHARE = 0.8


@dataclass(frozen=True)
class BenchOptions:
    targets: list[Target]
    spec: WorkloadSpec
    timeout: float
    json_out: Path | None
    chart_out: Path | None
    command: list[str]
    client: ClientKind = "http"


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


def saturation_note(endpoint: EndpointMetrics) -> str | None:
    """The warning for a run whose client was too busy to be a neutral observer, else None."""
    share = endpoint.client_cpu_share
    if share is None or share < CLIENT_SATURATED_SHARE:
        return None
    return (
        f"{endpoint.name}: the client used {share * 100:.0f} % of a core: the numbers are bounded by this machine, "
        "not the server (fewer requests in flight, the default --client http, or a client on another "
        "machine measure the server)"
    )


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
    spec = options.spec
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
    ) as progress:
        media = "images, videos" if spec.videos_per_request else "images"
        task = progress.add_task(
            f"building the workload ({media}, prompts)", total=spec.warmup + spec.requests
        )
        try:
            workload = build_workload(spec, on_request=lambda: progress.advance(task))
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
    # Two refreshes a second: the bar's thread runs in the process whose CPU time is reported.
    with Progress(*columns, console=err, refresh_per_second=2) as progress:
        for target, (model, version) in zip(options.targets, resolved, strict=True):
            bar = _EndpointBar(progress, target.name, len(workload.measured))
            run = await run_endpoint(
                target,
                model,
                workload,
                timeout=options.timeout,
                client=options.client,
                on_measuring=bar.measuring,
                on_done=bar.done,
            )
            if run.warmup_failures:
                notes.append(
                    f"{target.name}: {run.warmup_failures} warm-up request(s) failed: {run.warmup_error}"
                )
            metrics = summarize(
                name=target.name,
                base_url=target.base_url,
                model=model,
                samples=run.samples,
                duration_s=run.duration_s,
                server_version=version,
                client_cpu_s=run.client_cpu_s,
            )
            results.append(metrics)
            if (note := saturation_note(metrics)) is not None:
                notes.append(note)
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
            python=sys.version.split()[0],
            serve=_version("qwen3-vl-stack"),
            openai=_version("openai"),
            httpx=_version("httpx"),
            orjson=_version("orjson"),
        ),
        client=options.client,
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
