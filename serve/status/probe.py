"""One endpoint's state: up (answers), loading (starting, or unhealthy), down (nothing there), and what it
serves. Built on serve.launcher.readiness, the same probes `serve up` waits on."""

from __future__ import annotations

import socket
from enum import StrEnum
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, Field

from serve.launcher.readiness import (
    PROBE_TIMEOUT_SECONDS,
    ModelEntry,
    ModelsUnavailable,
    health_status,
    model_entries,
)
from serve.status.gpu_memory import GpuProcess, memory_held
from serve.status.processes import listener_pids, process_tree, starting_vllm


class State(StrEnum):
    UP = "up"
    LOADING = "loading"
    DOWN = "down"


class Target(BaseModel):
    """An endpoint to probe: a slot of the profiles, or a URL given with --endpoint."""

    name: str = Field(description="Label: the slot (8b) or the --endpoint name.")
    root_url: str = Field(description="Server root, where /health lives (the OpenAI API is under /v1).")
    profile: str | None = Field(default=None, description="The profile configured for the slot, if any.")
    served_names: dict[str, str] = Field(
        default_factory=dict, description="Served name -> profile, for the slot's variants."
    )
    start_hint: str = Field(default="", description="How to start it, for the `down` message.")

    @property
    def port(self) -> int:
        parts = urlsplit(self.root_url)
        return parts.port or (443 if parts.scheme == "https" else 80)

    @property
    def host(self) -> str:
        return urlsplit(self.root_url).hostname or ""


class EndpointReport(BaseModel):
    name: str = Field(description="The target's label.")
    url: str = Field(description="OpenAI API base URL (…/v1).")
    state: State = Field(description="up: answers; loading: starting or unhealthy; down: nothing answers.")
    detail: str = Field(default="", description="Why, in words, and what to do.")
    models: list[ModelEntry] = Field(default_factory=list, description="What /v1/models lists.")
    profile: str | None = Field(default=None, description="The profile whose served name it answers with.")
    gpu_memory_mib: int | None = Field(
        default=None, description="GPU memory its local processes hold (nvidia-smi); None when unknown."
    )


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=PROBE_TIMEOUT_SECONDS):
            return True
    except OSError:
        return False


def probe(target: Target, api_key: str | None, gpu: list[GpuProcess] | None) -> EndpointReport:
    """Never raises: every failure is a state with a reason."""
    report = EndpointReport(name=target.name, url=f"{target.root_url}/v1", state=State.DOWN)
    with httpx.Client() as client:
        status = health_status(client, target.root_url)
        if status == 200:
            report.state = State.UP
            try:
                report.models = model_entries(client, target.root_url, api_key)
            except ModelsUnavailable as exc:
                report.detail = (
                    "it needs the API key: set VLLM_API_KEY (environment, .env or secrets.env)"
                    if exc.status in (401, 403)
                    else f"{exc}: is this vLLM?"
                )
        elif status is not None and status >= 500:
            report.state = State.LOADING
            report.detail = f"/health answered {status}: still starting, or its engine died (see its log)"
        elif status is not None:
            report.detail = f"/health answered {status}: not a vLLM server?"
    if report.models:
        report.profile = target.served_names.get(report.models[0].id)
        if target.profile and report.profile and report.profile != target.profile:
            report.detail = f"serves profile {report.profile}; the slot is configured for {target.profile}"
    pids = listener_pids(target.port) if report.state is not State.DOWN else set()
    if status is None:
        if pid := starting_vllm(target.port):
            report.state = State.LOADING
            report.detail = f"vLLM (pid {pid}) is starting: it listens once the weights are loaded"
            pids = process_tree(pid)
        elif _port_open(target.host, target.port):
            report.state = State.LOADING
            report.detail = "the port is open but nothing answers HTTP yet (a container still loading?)"
        else:
            report.detail = f"nothing listens on {target.host}:{target.port}" + (
                f"; start it: {target.start_hint}" if target.start_hint else ""
            )
    if gpu is not None and pids:
        report.gpu_memory_mib = memory_held(pids, gpu)
    return report
