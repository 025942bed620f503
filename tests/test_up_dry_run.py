"""`serve up PROFILE --dry-run`: the exact vLLM command line on this machine's GPU, or the refusal, starting
nothing. The GPU is a FAKE nvidia-smi on PATH printing output captured from real GPUs (there is none here)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from serve.cli import main
from serve.launcher.vllm_process import VLLM_MODULE
from tests.helpers.fake_nvidia_smi import install_capture, path_with

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles"


@pytest.fixture
def gpu(tmp_path: Path, monkeypatch):
    """Put a fake nvidia-smi answering with a capture on PATH; returns the function that picks the capture."""
    monkeypatch.delenv("SERVE_GPU", raising=False)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)

    def use(capture: str) -> None:
        monkeypatch.setenv("PATH", path_with(install_capture(tmp_path / capture, capture)))

    return use


def dry_run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str], str]:
    code = main(["--profiles-dir", str(PROFILES), "up", "--dry-run", *args])
    captured = capsys.readouterr()
    return code, shlex.split(captured.out), captured.err


def flag(command: list[str], name: str) -> str:
    return command[command.index(name) + 1]


def test_prints_the_command_with_the_resolved_values(gpu, capsys: pytest.CaptureFixture[str]) -> None:
    gpu("l4")
    code, command, err = dry_run(capsys, "4b")
    assert code == 0
    assert set(command[:2]) == {"CUDA_VISIBLE_DEVICES=0", "VLLM_MEDIA_URL_ALLOW_REDIRECTS=0"}
    assert command[2:5] == [sys.executable, "-m", VLLM_MODULE]
    assert flag(command, "--config") == str(PROFILES / "4b.yaml")
    assert (flag(command, "--host"), flag(command, "--port")) == ("127.0.0.1", "8001")
    assert (flag(command, "--gpu-memory-utilization"), flag(command, "--max-model-len")) == ("0.9", "32768")
    assert "[serve] GPU 0: NVIDIA L4, 22.5 GiB, 0.5 GiB in use" in err
    assert "[serve] placement: 4b on GPU 0 (NVIDIA L4, 22.5 GiB): share 0.90, context 32,768" in err
    assert "8b + 4b cannot run together on these GPUs: one at a time" in err


def test_a_warned_context_is_in_the_command(gpu, capsys: pytest.CaptureFixture[str]) -> None:
    gpu("rtx4090")
    code, command, err = dry_run(capsys, "8b")
    assert code == 0 and int(flag(command, "--max-model-len")) < 32768
    assert "[serve] warning: 8b: context" in err


def test_a_refusal_exits_1_and_prints_no_command(gpu, capsys: pytest.CaptureFixture[str]) -> None:
    gpu("rtx3060")
    code, command, err = dry_run(capsys, "4b")
    assert (code, command) == (1, [])
    assert "error: 4b is not started, so nothing is downloaded" in err
    assert "what to change: the FP8 profile 4b-fp8" in err


def test_the_second_gpu_and_extra_arguments(gpu, capsys: pytest.CaptureFixture[str]) -> None:
    gpu("2xl4")
    code, command, _ = dry_run(capsys, "4b", "--port", "9001", "--", "--max-num-seqs", "8")
    assert code == 0 and "CUDA_VISIBLE_DEVICES=1" in command[:2]
    assert flag(command, "--port") == "9001" and command[-2:] == ["--max-num-seqs", "8"]


def test_overrides_keep_their_place_and_the_placement_checks_them(
    gpu, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    gpu("l40s")
    monkeypatch.setenv("SERVE_8B_QUANTIZATION", "fp8")
    monkeypatch.setenv("SERVE_8B_MAX_MODEL_LEN", "300000")
    code, command, err = dry_run(capsys, "8b")
    assert code == 0  # the user's value wins, with a warning
    assert flag(command, "--quantization") == "fp8" and flag(command, "--max-model-len") == "300000"
    assert command.count("--max-model-len") == 1
    assert "warning: SERVE_8B_MAX_MODEL_LEN=300000 cannot start" in err


def test_a_gpu_named_by_hand_is_used_instead(gpu, capsys: pytest.CaptureFixture[str]) -> None:
    gpu("l4")
    code, command, err = dry_run(capsys, "8b", "--gpu", "h100")
    assert code == 0 and flag(command, "--max-model-len") == "32768"
    assert "GPU 0: H100 80GB SXM, 79.6 GiB, 0.5 GiB in use (as given with --gpu)" in err


def test_without_a_gpu_nothing_is_added_and_it_says_so(tmp_path: Path) -> None:
    """The CPU path, as a user runs it: no nvidia-smi anywhere, the real-vLLM tests' path."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}/usr/bin:/bin"}
    env.pop("SERVE_GPU", None)
    result = subprocess.run(
        [sys.executable, "-m", "serve", "--profiles-dir", str(PROFILES), "up", "4b", "--dry-run"],
        capture_output=True, text=True, timeout=120, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    command = shlex.split(result.stdout)
    assert result.stdout.count("\n") == 1  # one line
    assert "--gpu-memory-utilization" not in command and "--max-model-len" not in command
    assert not any(part.startswith("CUDA_VISIBLE_DEVICES=") for part in command)
    assert "placement: none (no NVIDIA GPU found (nvidia-smi is not on PATH))" in result.stderr


def test_a_model_the_planner_does_not_know_still_starts_unplaced(
    gpu, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    gpu("l4")
    own = tmp_path / "mine.yaml"
    own.write_text(
        (PROFILES / "4b.yaml").read_text().replace("Qwen/Qwen3-VL-4B-Instruct", "someone/other-vlm")
    )
    code, command, err = dry_run(capsys, str(own))
    assert code == 0 and "--gpu-memory-utilization" not in command
    assert (
        "placement: none (the planner cannot size it: model 'someone/other-vlm' is not in the built-in" in err
    )
