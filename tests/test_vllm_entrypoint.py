"""docker/vllm-entrypoint.sh run with `sh` against a fake `vllm` that prints its argv (the real image cannot run
here), with SERVE_PROFILES_DIR pointing at a temporary profiles folder."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from serve.config.overrides import ProfileOverrides

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "docker" / "vllm-entrypoint.sh"

FAKE_VLLM = """#!/bin/sh
: > "$(dirname "$0")/ran"
for arg in "$@"; do printf '%s\\n' "$arg"; done
"""

OVERRIDE_FLAGS = {
    "SERVE_GPU_MEMORY_UTILIZATION": ("--gpu-memory-utilization", "0.92"),
    "SERVE_MAX_MODEL_LEN": ("--max-model-len", "16384"),
    "SERVE_QUANTIZATION": ("--quantization", "fp8"),
}


@dataclass
class Sandbox:
    profiles: Path
    bin: Path

    def run(self, *args: str, **variables: str) -> subprocess.CompletedProcess[str]:
        # A clean environment: no SERVE_* leaking in from the developer's shell.
        env = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "SERVE_PROFILES_DIR": str(self.profiles),
        }
        return subprocess.run(
            ["sh", str(SCRIPT), *args],
            env={**env, **variables},
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )

    def argv(self, *args: str, **variables: str) -> list[str]:
        result = self.run(*args, **variables)
        assert result.returncode == 0, result.stderr
        return result.stdout.splitlines()

    @property
    def vllm_ran(self) -> bool:
        return (self.bin / "ran").exists()

    def config(self, name: str) -> list[str]:
        return ["serve", "--config", str(self.profiles / f"{name}.yaml")]


@pytest.fixture
def sandbox(tmp_path: Path) -> Sandbox:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for name in ("8b", "8b-fp8", "4b"):
        (profiles / f"{name}.yaml").write_text(f"model: test/{name}\n")
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "vllm").write_text(FAKE_VLLM)
    (fake_bin / "vllm").chmod(0o755)
    return Sandbox(profiles=profiles, bin=fake_bin)


def test_no_overrides_runs_the_profile(sandbox: Sandbox) -> None:
    assert sandbox.argv(SERVE_PROFILE="8b-fp8") == sandbox.config("8b-fp8")


def test_empty_overrides_add_no_flag(sandbox: Sandbox) -> None:
    # Compose passes `${SERVE_8B_QUANTIZATION:-}` as an empty string when it is not set.
    empty = dict.fromkeys(OVERRIDE_FLAGS, "") | {"SERVE_QUANTIZATION": "  "}
    assert sandbox.argv(SERVE_PROFILE="8b", **empty) == sandbox.config("8b")


@pytest.mark.parametrize("variable", list(OVERRIDE_FLAGS))
def test_each_override(sandbox: Sandbox, variable: str) -> None:
    flag, value = OVERRIDE_FLAGS[variable]
    assert sandbox.argv(SERVE_PROFILE="4b", **{variable: value}) == [*sandbox.config("4b"), flag, value]


def test_all_overrides_then_extra_arguments(sandbox: Sandbox) -> None:
    variables = {variable: value for variable, (_, value) in OVERRIDE_FLAGS.items()}
    argv = sandbox.argv("--max-num-seqs", "8", "--served-model-name", "a b", SERVE_PROFILE="8b", **variables)
    expected_flags = [part for flag_value in OVERRIDE_FLAGS.values() for part in flag_value]
    assert argv == [
        *sandbox.config("8b"),
        *expected_flags,
        "--max-num-seqs",
        "8",
        "--served-model-name",
        "a b",
    ]


def test_values_are_trimmed(sandbox: Sandbox) -> None:
    assert sandbox.argv(SERVE_PROFILE=" 8b ", SERVE_MAX_MODEL_LEN=" 8192 ") == [
        *sandbox.config("8b"),
        "--max-model-len",
        "8192",
    ]


@pytest.mark.parametrize(
    "variables",
    [
        {"SERVE_GPU_MEMORY_UTILIZATION": "0.5"},
        {"SERVE_MAX_MODEL_LEN": "16384", "SERVE_QUANTIZATION": "fp8"},
        {"SERVE_GPU_MEMORY_UTILIZATION": "0.92", "SERVE_MAX_MODEL_LEN": "16k", "SERVE_QUANTIZATION": "fp8"},
        {},
    ],
)
def test_same_flags_as_the_bare_metal_launcher(sandbox: Sandbox, variables: dict[str, str]) -> None:
    """Compose maps SERVE_8B_X to SERVE_X; serve/config/overrides.py reads SERVE_8B_X on bare metal."""
    family_env = {name.replace("SERVE_", "SERVE_8B_", 1): value for name, value in variables.items()}
    launcher_flags = ProfileOverrides.for_family("8b", family_env).as_cli_args()
    assert sandbox.argv(SERVE_PROFILE="8b", **variables) == [*sandbox.config("8b"), *launcher_flags]


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        ("../etc/passwd", "is not a profile name"),
        ("8b/../4b", "is not a profile name"),
        ("8b;reboot", "is not a profile name"),
        ("$(id)", "is not a profile name"),
        ("9b", "no profile '9b'"),
        ("", "SERVE_PROFILE is empty"),
    ],
)
def test_bad_profile_fails_without_running_vllm(sandbox: Sandbox, profile: str, message: str) -> None:
    result = sandbox.run(SERVE_PROFILE=profile)
    assert result.returncode != 0
    assert message in result.stderr
    assert result.stdout == ""
    assert not sandbox.vllm_ran


def test_missing_profile_lists_the_available_ones(sandbox: Sandbox) -> None:
    result = sandbox.run(SERVE_PROFILE="8b-thinking")
    available = result.stderr.rsplit("Available:", 1)[1].split()
    assert sorted(available) == ["4b", "8b", "8b-fp8"]
    assert not sandbox.vllm_ran


def test_unset_profile_fails(sandbox: Sandbox) -> None:
    result = sandbox.run()
    assert result.returncode != 0
    assert "SERVE_PROFILE is empty" in result.stderr
    assert not sandbox.vllm_ran


def test_profiles_dir_defaults_to_the_mount_point() -> None:
    text = SCRIPT.read_text()
    assert "${SERVE_PROFILES_DIR:-/profiles}" in text
    assert text.startswith("#!/bin/sh\n")
    assert "\nset -eu\n" in text
