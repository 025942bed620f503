"""GPU detection from nvidia-smi. There is no GPU here: a FAKE nvidia-smi on PATH (tests/helpers/fake_nvidia_smi.py)
prints output captured from real GPUs, and serve runs it as it runs the real one."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve.planner.detect import (
    GpuDetectionError,
    GpuSource,
    detect_gpus,
    parse_apps_csv,
    parse_gpu_csv,
    survey_gpus,
)
from serve.planner.gpus import GPUS, UnknownGpuError
from tests.helpers.fake_nvidia_smi import capture, captures, install, install_capture, path_with

KINDS = {
    "rtx3060": "rtx3060", "t4": "t4", "l4": "l4", "a10g": "a10g", "rtx3090": "rtx3090", "rtx4090": "rtx4090",
    "a100-40gb": "a100-40gb", "l40s": "l40s", "a100-80gb": "a100-80gb", "h100": "h100", "h200": "h200",
    "2xl4": "l4", "2xrtx4090": "rtx4090", "rtx4090-10gb-used": "rtx4090",
}  # fmt: skip


def env_with_fake(bin_dir: Path, **extra: str) -> dict[str, str]:
    return {"PATH": path_with(bin_dir, "/usr/bin:/bin"), **extra}


@pytest.mark.parametrize("name", captures())
def test_every_captured_gpu_is_detected_and_recognised(tmp_path: Path, name: str) -> None:
    found = detect_gpus(env_with_fake(install_capture(tmp_path, name)))
    assert found.source is GpuSource.NVIDIA_SMI and found.found
    expected = parse_gpu_csv(capture(name))
    assert [g.index for g in found.gpus] == list(range(len(expected)))
    for gpu in found.gpus:
        assert gpu.kind is not None and gpu.kind.key == KINDS[name]
        assert gpu.total_mib == gpu.kind.memory_mib  # the table holds what nvidia-smi reports
        assert gpu.free_mib < gpu.total_mib - gpu.used_mib  # the driver's reserve is not free
    assert found.describe().startswith(f"GPU 0: {expected[0].name}, ")


def test_the_line_reports_what_is_in_use(tmp_path: Path) -> None:
    l4 = detect_gpus(env_with_fake(install_capture(tmp_path, "l4")))
    assert l4.describe() == "GPU 0: NVIDIA L4, 22.5 GiB, 0.5 GiB in use"
    busy = detect_gpus(env_with_fake(install_capture(tmp_path / "busy", "rtx4090-10gb-used")))
    assert busy.describe() == "GPU 0: NVIDIA GeForce RTX 4090, 24.0 GiB, 10.5 GiB in use"
    assert [p.describe() for p in busy.processes] == ["pid 4242 /usr/bin/python3 (10,240 MiB)"]


def test_no_nvidia_smi_means_no_gpu_and_says_why(tmp_path: Path) -> None:
    found = detect_gpus({"PATH": str(tmp_path)})
    assert not found.found and found.source is None
    assert found.describe() == "no NVIDIA GPU found (nvidia-smi is not on PATH)"


def test_a_failing_nvidia_smi_is_reported_not_raised(tmp_path: Path) -> None:
    found = detect_gpus(env_with_fake(install(tmp_path, "", exit_code=9)))
    assert not found.found
    assert "failed (exit 9): NVIDIA-SMI has failed because it couldn't communicate" in found.note


def test_header_and_units_are_tolerated() -> None:
    text = "index, name, memory.total [MiB], memory.used [MiB], memory.free [MiB]\n0, NVIDIA L4, 23034 MiB, 0 MiB, 22563 MiB\n"
    (gpu,) = parse_gpu_csv(text)
    assert (gpu.index, gpu.name, gpu.total_mib, gpu.free_mib) == (0, "NVIDIA L4", 23034, 22563)


def test_a_name_with_a_comma_stays_whole() -> None:
    (gpu,) = parse_gpu_csv("0, Some GPU, rev 2, 16384, 0, 15900\n")
    assert gpu.name == "Some GPU, rev 2" and gpu.kind is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0, NVIDIA A100-SXM4-40GB MIG 1g.5gb, [N/A], [N/A], [N/A]\n", "no memory figures for this GPU"),
        ("garbage\n", "not 'index, name, total, used, free'"),
    ],
)
def test_unreadable_output_says_what_to_do(text: str, message: str) -> None:
    with pytest.raises(GpuDetectionError) as caught:
        parse_gpu_csv(text)
    assert message in str(caught.value)


def test_compute_apps_without_names_or_memory() -> None:
    processes = parse_apps_csv("[N/A], , [N/A]\n1234, python3, 2048 MiB\n")
    assert [(p.pid, p.name, p.used_mib) for p in processes] == [(None, "?", None), (1234, "python3", 2048)]


def test_cuda_visible_devices_narrows_the_gpus(tmp_path: Path) -> None:
    bin_dir = install_capture(tmp_path, "2xl4")
    assert [g.index for g in detect_gpus(env_with_fake(bin_dir, CUDA_VISIBLE_DEVICES="1")).gpus] == [1]
    assert detect_gpus(env_with_fake(bin_dir, CUDA_VISIBLE_DEVICES="")).gpus == []
    everything = detect_gpus(env_with_fake(bin_dir, CUDA_VISIBLE_DEVICES="GPU-0c1f"))
    assert len(everything.gpus) == 2 and "not a list of indices" in everything.note


def test_overrides_win_over_detection_in_order(tmp_path: Path) -> None:
    environ = env_with_fake(install_capture(tmp_path, "l4"), SERVE_GPU="h100")
    by_variable = survey_gpus(environ=environ)
    assert by_variable.source is GpuSource.VARIABLE and by_variable.gpus[0].kind == GPUS["h100"]
    assert "(as given with SERVE_GPU)" in by_variable.describe()
    by_option = survey_gpus(gpu="2xrtx4090", environ=environ)
    assert by_option.source is GpuSource.OPTION and [g.index for g in by_option.gpus] == [0, 1]
    by_size = survey_gpus(gpu_memory_gib=40.0, environ=environ)
    assert by_size.gpus[0].total_mib == 40960 and by_size.gpus[0].kind is None
    assert survey_gpus(gpu="2x24", environ={}).gpus[1].total_mib == 24576
    # A named GPU is idle: the driver's reserve is kept back, nothing else.
    assert 0 < GPUS["l4"].memory_mib - survey_gpus(gpu="l4", environ={}).gpus[0].free_mib <= 600


@pytest.mark.parametrize(("value", "message"), [("b300", "unknown GPU 'b300'"), ("0xl4", "between 1 and 16")])
def test_a_bad_serve_gpu_names_the_variable(value: str, message: str) -> None:
    with pytest.raises(UnknownGpuError) as caught:
        survey_gpus(environ={"SERVE_GPU": value})
    assert str(caught.value).startswith("SERVE_GPU: ") and message in str(caught.value)
