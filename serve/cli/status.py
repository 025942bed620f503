"""`serve status`: each configured model endpoint, up / loading / down, what it serves, the GPU memory it holds."""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.console import Console
from rich.table import Table

from serve.cli.arguments import endpoint, program_name
from serve.config.environment import environ_with_dotenv
from serve.config.overrides import variable_prefix
from serve.config.profile import ProfileError, default_profiles_dir, family_of, load_profile, profile_paths
from serve.config.secrets import find_secrets
from serve.launcher.addresses import http_root
from serve.status.gpu_memory import GpuQueryError, gpu_processes
from serve.status.probe import EndpointReport, State, Target, probe

NAME = "status"
MIB_PER_GIB = 1024


def register(sub: argparse._SubParsersAction) -> None:
    status = sub.add_parser(
        NAME,
        help="is each model server up, loading or down; what it serves; the GPU memory it holds",
        description="Probes the model endpoints the profiles configure (one per slot: 8b on 8000, 4b on "
        "8001, on BIND_ADDRESS or 127.0.0.1) or the ones given with --endpoint: up (answers), loading "
        "(starting, or unhealthy) or down, the model each serves with its context length, and, where "
        "nvidia-smi is installed, the GPU memory its processes on this machine hold.\n"
        "The API key comes from VLLM_API_KEY (environment, .env or secrets.env).\n"
        "Exit code 0 when every endpoint is up, 1 otherwise.",
    )
    status.add_argument(
        "--endpoint",
        dest="endpoints",
        metavar="[NAME=]URL",
        type=endpoint,
        action="append",
        default=None,
        help="probe this OpenAI API base URL (…/v1) instead of the profiles' slots; repeatable",
    )
    status.add_argument("--json", action="store_true", help="print a JSON list instead")


def slot_targets(profiles_dir: Path, env: Mapping[str, str]) -> list[Target]:
    """One target per slot: the profile SERVE_<FAMILY>_PROFILE selects (default: the family's own)."""
    families: dict[str, list[Path]] = {}
    for path in profile_paths(profiles_dir):
        families.setdefault(family_of(path.stem), []).append(path)
    host = (env.get("BIND_ADDRESS") or "").strip() or "127.0.0.1"
    targets = []
    for family, paths in families.items():
        served: dict[str, str] = {}
        for path in paths:
            try:
                served.update(dict.fromkeys(load_profile(path, env).settings.served_names, path.stem))
            except ProfileError:
                continue
        wanted = (env.get(f"{variable_prefix(family)}PROFILE") or "").strip() or family
        by_name = {path.stem: path for path in paths}
        try:
            profile = load_profile(by_name.get(wanted, paths[0]), env)
        except ProfileError as exc:
            raise ProfileError(f"{exc}\n(serve status reads the port of slot {family} from it)") from None
        targets.append(
            Target(
                name=family,
                root_url=http_root(host, profile.settings.port),
                profile=profile.name,
                served_names=served,
                start_hint=f"{program_name()} up {profile.name}, or docker compose --profile {family} up",
            )
        )
    return targets


def _gib(mib: int | None) -> str:
    return "-" if mib is None else f"{mib / MIB_PER_GIB:.1f} GiB"


def _table(reports: list[EndpointReport]) -> Table:
    table = Table(title="Model endpoints", title_justify="left")
    for column in ("endpoint", "URL", "state", "model", "context", "GPU memory", "detail"):
        table.add_column(column, overflow="fold")
    colours = {State.UP: "green", State.LOADING: "yellow", State.DOWN: "red"}
    for report in reports:
        model = report.models[0] if report.models else None
        name = model.id if model else "-"
        if model and report.profile:
            name += f" ({report.profile})"
        table.add_row(
            report.name,
            report.url,
            f"[{colours[report.state]}]{report.state}[/]",
            name,
            f"{model.max_model_len:,}" if model and model.max_model_len else "-",
            _gib(report.gpu_memory_mib),
            report.detail,
        )
    return table


def run(args: argparse.Namespace, out: Console) -> int:
    env = environ_with_dotenv(Path(".env"))
    if args.endpoints:
        targets = [Target(name=name, root_url=url.removesuffix("/v1")) for name, url in args.endpoints]
    else:
        targets = slot_targets(args.profiles_dir or default_profiles_dir(), env)
        if not targets:
            raise ProfileError(
                "no profile files to take the endpoints from; pass --profiles-dir or --endpoint"
            )
    key = find_secrets(Path.cwd()).get("VLLM_API_KEY")
    api_key = key.value.get_secret_value() if key else None
    gpu_note = ""
    try:
        gpu = gpu_processes()
    except GpuQueryError as exc:
        gpu, gpu_note = None, f"GPU memory not shown: {exc}"
    if gpu is None and not gpu_note:
        gpu_note = "GPU memory not shown: no nvidia-smi on this machine"
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        reports = list(pool.map(lambda target: probe(target, api_key, gpu), targets))
    if args.json:
        print(json.dumps([report.model_dump(mode="json") for report in reports], indent=2))
    else:
        out.print(_table(reports))
        if gpu_note:
            out.print(gpu_note, highlight=False, markup=False)
    return 0 if all(report.state is State.UP for report in reports) else 1
