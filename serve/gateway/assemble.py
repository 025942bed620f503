"""From profiles and options to a running gateway: the model specs, the instances (supervised or attached),
the swap mode, the default --max-awake from the placement, and uvicorn."""

from __future__ import annotations

import contextlib
import logging
import signal
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import psutil
import uvicorn

from serve.config.profile import Profile
from serve.gateway.config import GatewaySettings, ModelSpec, Policy
from serve.gateway.controller import SwapController
from serve.gateway.instances import Instance
from serve.gateway.metrics import GatewayMetrics
from serve.gateway.remote import RemoteInstance
from serve.gateway.routes import Gateway, build_app, running
from serve.gateway.supervised import SupervisedInstance
from serve.gateway.swap import ModeChoice, SwapMode, choose_mode, swapper_for
from serve.planner.placement import InstancePlacement, Layout, Placement

log = logging.getLogger("serve.gateway")
GIB = 1024**3


def default_max_awake(placement: Placement | None, count: int) -> int:
    """What the placement allows awake at once: all without a GPU to plan for (CPU), one per group when
    they cannot run together, else the whole group."""
    if placement is None:
        return count
    return max(len(group) for group in placement.awake_together)


def placed_for(placement: Placement | None, profile: Profile, mode: SwapMode) -> InstancePlacement | None:
    """The instance's placement; while the others sleep beside it, the smaller share the placement leaves."""
    if placement is None:
        return None
    placed = placement.instance(profile.name)
    beside = placed.beside_sleeping
    if mode is SwapMode.SLEEP and placement.layout is Layout.CANNOT_RUN_TOGETHER and beside is not None:
        return placed.model_copy(
            update={
                "gpu_memory_utilization": beside.gpu_memory_utilization,
                "max_model_len": beside.max_model_len,
            }
        )
    return placed


def spec_of(profile: Profile, placed: InstancePlacement | None) -> ModelSpec:
    return ModelSpec(
        id=profile.settings.served_name,
        profile=profile.name,
        max_model_len=placed.max_model_len if placed else profile.settings.max_model_len,
    )


def pick_mode(
    requested: SwapMode,
    profiles: Sequence[Profile],
    placement: Placement | None,
    max_awake: int,
    supervised: bool,
) -> ModeChoice:
    sleepers = max(len(profiles) - max_awake, 0)
    weights = (
        sorted((placement.instance(p.name).plan.weights_gib for p in profiles), reverse=True)
        if placement
        else []
    )
    return choose_mode(
        requested,
        supervised=supervised,
        sleep_supported=placement is not None,
        sleeping_weights_gib=sum(weights[:sleepers]),
        host_available_gib=psutil.virtual_memory().available / GIB,
    )


@dataclass(frozen=True)
class Supervision:
    """How the gateway starts vLLM itself: where sockets and logs go, what every instance gets."""

    log_dir: Path | None
    extra_args: list[str]
    environment: Mapping[str, str]
    gpu: bool  # vLLM's GPU build: sleep mode needs --enable-sleep-mode there (the CPU build refuses it)


def private_dir() -> Path:
    """mkdtemp makes it 0700: only this user can reach the instances' sockets inside."""
    return Path(tempfile.mkdtemp(prefix="serve-gateway-"))


def supervised_instances(
    profiles: Sequence[Profile],
    placement: Placement | None,
    mode: SwapMode,
    how: Supervision,
    ready_timeout: float,
    socket_dir: Path,
) -> list[Instance]:
    log_dir = how.log_dir or socket_dir
    sleep_args = ["--enable-sleep-mode"] if mode is SwapMode.SLEEP and how.gpu else []
    # Dev mode opens /sleep and /wake_up (and /collective_rpc): safe only because the socket is private.
    sleep_env = {"VLLM_SERVER_DEV_MODE": "1"} if mode is SwapMode.SLEEP else {}
    instances: list[Instance] = []
    for profile in profiles:
        placed = placed_for(placement, profile, mode)
        instances.append(
            SupervisedInstance(
                spec_of(profile, placed),
                profile,
                socket_dir=socket_dir,
                log_dir=log_dir,
                extra_args=[*how.extra_args, *sleep_args],
                placed=placed,
                extra_env={**how.environment, **(placed.environment() if placed else {}), **sleep_env},
                ready_timeout=ready_timeout,
            )
        )
    return instances


def attached_instances(
    profiles: Sequence[Profile],
    placement: Placement | None,
    urls: Mapping[str, str],
    api_key: str | None,
    ready_timeout: float,
) -> list[Instance]:
    return [
        RemoteInstance(
            spec_of(p, placed_for(placement, p, SwapMode.SLEEP)), urls[p.name], api_key, ready_timeout
        )
        for p in profiles
    ]


def build_gateway(
    settings: GatewaySettings, instances: Sequence[Instance], mode: SwapMode, policy: Policy
) -> tuple[Gateway, object]:
    """The ASGI app with its lifespan (the swap worker), ready for uvicorn or a test server."""
    metrics = GatewayMetrics()
    controller = SwapController(instances, swapper_for(mode, policy.ready_timeout_s), policy, metrics)
    gateway = Gateway(settings, controller, metrics)
    return gateway, build_app(gateway, lifespan=lambda app: running(controller))


class _Server(uvicorn.Server):
    """uvicorn re-raises SIGTERM after its graceful shutdown (exit 143); a gateway that stopped its instances
    cleanly exits 0, as `serve up` does."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        previous = {sig: signal.signal(sig, self.handle_exit) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)


def serve(settings: GatewaySettings, app: object) -> None:
    """Run until SIGINT/SIGTERM; uvicorn's shutdown runs the lifespan's end, which stops the instances."""
    config = uvicorn.Config(
        app, host=settings.host, port=settings.port, log_level="warning", lifespan="on", access_log=False
    )
    _Server(config).run()
