"""`serve check`: the shipped profiles and compose file pass; each broken case gives its own message."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from serve.check import run_check
from serve.cli import main
from tests.helpers.fake_nvidia_smi import install_capture, path_with

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's profiles, compose file, .env and entrypoint to break."""
    for name in ("profiles", "docker"):
        shutil.copytree(REPO / name, tmp_path / name)
    for name in ("docker-compose.yml", ".env"):
        shutil.copy(REPO / name, tmp_path / name)
    return tmp_path


def check(project: Path, *profiles: str, environ: dict[str, str] | None = None) -> list[str]:
    report = run_check(project / "profiles", project / "docker-compose.yml", profiles, environ or {})
    return [str(finding) for finding in report.errors]


def edit_profile(project: Path, name: str, **changes: object) -> None:
    path = project / "profiles" / f"{name}.yaml"
    data = yaml.safe_load(path.read_text())
    data.update({key.replace("_", "-"): value for key, value in changes.items()})
    path.write_text(yaml.safe_dump(data))


def test_the_shipped_project_passes_from_the_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "serve", "check"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "check passed" in result.stdout
    for name in ("8b", "4b", "8b-fp8", "4b-fp8", "8b-thinking", "4b-thinking"):
        assert f"profiles/{name}.yaml" in result.stdout
    assert "docker-compose.yml: agrees with the profiles" in result.stdout


def test_clean_copy_has_no_errors(project: Path) -> None:
    assert check(project) == []


def test_broken_yaml_fails_with_file_and_line(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (project / "profiles" / "4b.yaml").write_text("model: [unclosed\nport: 8001\n")
    args = [
        "--profiles-dir",
        str(project / "profiles"),
        "check",
        "--compose-file",
        str(project / "docker-compose.yml"),
    ]
    assert main(args) == 1
    out = capsys.readouterr().out
    assert "4b.yaml: YAML syntax error at line" in out and "check failed" in out


def test_fraction_out_of_range(project: Path) -> None:
    edit_profile(project, "8b-fp8", gpu_memory_utilization=1.2)
    assert any("8b-fp8.yaml: gpu-memory-utilization: 1.2 is outside (0, 1]" in e for e in check(project))


def test_max_model_len_above_the_model_limit(project: Path) -> None:
    edit_profile(project, "4b", max_model_len=300000)
    errors = check(project)
    assert any("4b.yaml: max-model-len" in e and "above the model's limit of 262144" in e for e in errors)


def test_unknown_quantization(project: Path) -> None:
    edit_profile(project, "8b", quantization="fp3")
    assert any("8b.yaml: quantization: unknown method 'fp3'; valid:" in e for e in check(project))


def test_two_profiles_on_the_same_port(project: Path) -> None:
    edit_profile(project, "4b", port=8000)
    errors = check(project)
    assert any("port 8000 is used by 8b, 4b" in e or "port 8000 is used by 4b, 8b" in e for e in errors)
    # Compose publishes 8001 for vllm-4b: the mismatch is named too.
    assert any("vllm-4b" in e and "profile 4b listens on 8000" in e for e in errors)


def test_served_name_clash_between_profiles_run_together(project: Path) -> None:
    edit_profile(project, "4b", served_model_name="qwen3-vl-8b")
    errors = check(project, "8b", "4b")
    assert any("served name 'qwen3-vl-8b' is used by" in e for e in errors)


def test_gpu_shares_set_by_hand_that_cannot_share_a_gpu(project: Path) -> None:
    """Without a GPU to place on, shares chosen by hand that exceed one GPU's 0.9 are a warning (they would
    fit on two GPUs); on one GPU the placement refuses to run them together."""
    environ = {"SERVE_8B_GPU_MEMORY_UTILIZATION": "0.6", "SERVE_4B_GPU_MEMORY_UTILIZATION": "0.5"}
    report = run_check(project / "profiles", project / "docker-compose.yml", (), environ)
    assert report.errors == []
    assert any("adds up to 1.1 > 0.9" in str(w) for w in report.warnings)


def test_compose_service_naming_a_missing_profile(project: Path) -> None:
    errors = check(project, environ={"SERVE_8B_PROFILE": "8b-awq"})
    assert any("services.vllm-8b: profile '8b-awq' does not exist" in e and "8b-fp8" in e for e in errors)


def test_compose_variant_selection_is_checked_as_it_would_run(project: Path) -> None:
    assert check(project, environ={"SERVE_8B_PROFILE": "8b-fp8", "SERVE_4B_PROFILE": "4b-thinking"}) == []


def test_compose_healthcheck_on_the_wrong_port(project: Path) -> None:
    compose = project / "docker-compose.yml"
    compose.write_text(
        compose.read_text().replace("http://localhost:8001/health", "http://localhost:8002/health")
    )
    assert any("vllm-4b: healthcheck probes port 8002" in e for e in check(project))


def test_frontend_told_a_wrong_port(project: Path) -> None:
    compose = project / "docker-compose.yml"
    text = compose.read_text()
    at = text.index('"name": "Qwen3-VL-4B"')
    compose.write_text(text[:at] + text[at:].replace("http://gateway:8000/v1", "http://gateway:9000/v1", 1))
    errors = check(project)
    assert any(
        "frontend endpoint 'Qwen3-VL-4B'" in e and "should be the gateway, http://gateway:8000/v1" in e
        for e in errors
    )
    assert not any("Qwen3-VL-8B" in e for e in errors)


def test_frontend_image_limit_must_match_the_profile(project: Path) -> None:
    """The page trims history to image_limit images; a larger number than vLLM's limit breaks long chats."""
    edit_profile(project, "4b", limit_mm_per_prompt={"image": 2, "video": 0})
    errors = check(project)
    assert any(
        "frontend endpoint 'Qwen3-VL-4B'" in e and "image_limit is 4 but profile 4b takes 2 image(s)" in e
        for e in errors
    )
    assert not any("Qwen3-VL-8B" in e for e in errors)


def test_frontend_image_token_cap_must_match_the_profile(project: Path) -> None:
    """The page prepares images within the server's cap; a different number would show wrong image costs."""
    edit_profile(
        project, "8b", mm_processor_kwargs={"size": {"longest_edge": 2048 * 1024, "shortest_edge": 65536}}
    )
    errors = check(project)
    assert any(
        "frontend endpoint 'Qwen3-VL-8B'" in e
        and "max_image_tokens is 1280 but profile 8b caps images at 2048" in e
        for e in errors
    )


def test_compose_that_fails_the_specification(project: Path) -> None:
    compose = project / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("  ipc: host", "  ipcc: host"))
    errors = check(project)
    assert any("docker-compose.yml" in e and "ipcc" in e for e in errors)


def test_named_profiles_that_do_not_exist(project: Path) -> None:
    assert any("unknown profile '9b'" in e and "available in" in e for e in check(project, "9b"))


def test_missing_compose_file_is_reported(project: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ["--profiles-dir", str(project / "profiles"), "check", "--compose-file", str(project / "nope.yml")]
    assert main(args) == 1
    assert "no such compose file" in capsys.readouterr().out


# ---------------------------------------------------------------------------- overrides, paths, compose-spec


def test_one_bad_override_is_one_error_naming_the_variable_and_every_profile_it_breaks(project: Path) -> None:
    errors = check(project, environ={"SERVE_4B_GPU_MEMORY_UTILIZATION": "1.5"})
    assert len(errors) == 1, errors  # no second, misleading one about the page's 4B endpoint
    (error,) = errors
    where, _, problem = error.partition(": ")
    assert where.startswith("profiles ") and set(where.removeprefix("profiles ").split(", ")) == {
        "4b",
        "4b-fp8",
        "4b-long",
        "4b-thinking",
    }
    assert problem.startswith("gpu-memory-utilization")
    assert "(set by SERVE_4B_GPU_MEMORY_UTILIZATION): 1.5 is outside (0, 1]" in error


@pytest.mark.parametrize("source", ["environment", ".env"])
def test_no_compose_still_applies_the_overrides(
    project: Path, source: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project)
    if source == "environment":
        monkeypatch.setenv("SERVE_8B_MAX_MODEL_LEN", "0")
    else:
        (project / ".env").write_text("SERVE_8B_MAX_MODEL_LEN=0\n")
    assert main(["check", "--no-compose"]) == 1
    out = capsys.readouterr().out
    assert "(set by SERVE_8B_MAX_MODEL_LEN): 0 is not a positive number of tokens" in out
    assert "check failed: 1 error(s)" in out


def test_profiles_named_by_path_are_checked_together(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(project)
    assert main(["check", "profiles/8b.yaml", "4b"]) == 0, capsys.readouterr().out
    mine = tmp_path / "mine.yaml"
    data = yaml.safe_load((project / "profiles" / "4b.yaml").read_text())
    mine.write_text(yaml.safe_dump({**data, "port": 8000, "served-model-name": "mine"}))
    capsys.readouterr()
    assert main(["check", "profiles/8b.yaml", str(mine)]) == 1
    assert "port 8000 is used by 8b, mine" in capsys.readouterr().out


def test_without_compose_spec_the_structure_is_still_checked_and_the_skip_is_said(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "compose_spec", None)  # import compose_spec now fails
    report = run_check(project / "profiles", project / "docker-compose.yml", (), {})
    assert report.ok
    assert any("compose-spec is not installed" in str(w) and "skipped" in str(w) for w in report.warnings)
    compose = project / "docker-compose.yml"
    compose.write_text(compose.read_text().replace("  ipc: host", "  ipcc: host"))
    errors = check(project)
    assert any("unknown service key 'ipcc'" in e and "did you mean 'ipc'" in e for e in errors), errors


# ------------------------------------------------------------------------- the GPU (FAKE nvidia-smi: none here)


def check_on(capture: str, project: Path, tmp_path: Path, monkeypatch, capsys, *args: str) -> tuple[int, str]:
    monkeypatch.setenv("PATH", path_with(install_capture(tmp_path / "bin", capture)))
    monkeypatch.delenv("SERVE_GPU", raising=False)
    monkeypatch.chdir(project)
    code = main(["--profiles-dir", str(project / "profiles"), "check", *args])
    return code, capsys.readouterr().out


def test_the_default_set_starts_on_the_detected_gpu(
    project: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    code, out = check_on("l4", project, tmp_path, monkeypatch, capsys)
    assert code == 0, out
    assert "GPU 0: NVIDIA L4, 22.5 GiB, 0.5 GiB in use" in out
    assert "placement (docker compose): 8b + 4b: cannot run together" in out
    assert "4b on GPU 0 (NVIDIA L4, 22.5 GiB): share 0.90, context 32,768" in out
    assert "check passed" in out


def test_both_models_by_default_on_one_24gb_gpu_swap_behind_the_gateway(
    project: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    """The two do not fit awake together: behind the compose gateway that is a swap (said), not an error."""
    monkeypatch.setenv("COMPOSE_PROFILES", "8b,4b")
    code, out = check_on("rtx4090", project, tmp_path, monkeypatch, capsys)
    assert code == 0, out
    assert "8b and 4b cannot run at the same time on GPU 0 (NVIDIA GeForce RTX 4090" in out
    assert "the gateway keeps one awake at a time and switches by sleep/wake" in out


def test_both_models_by_default_on_one_24gb_gpu_fail_without_the_gateway(
    project: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    compose = project / "docker-compose.yml"
    data = yaml.safe_load(compose.read_text())
    del data["services"]["gateway"]
    for name in ("vllm-8b", "vllm-4b"):  # published directly, as before the gateway
        port = 8000 if name == "vllm-8b" else 8001
        data["services"][name]["ports"] = [f"127.0.0.1:{port}:{port}"]
        data["services"][name]["environment"]["VLLM_SERVER_DEV_MODE"] = "0"
    entries = [
        {"name": "Qwen3-VL-8B", "base_url": "http://vllm-8b:8000/v1", "max_image_tokens": 1280},
        {"name": "Qwen3-VL-4B", "base_url": "http://vllm-4b:8001/v1", "max_image_tokens": 1280},
    ]
    data["services"]["frontend"]["environment"]["FRONTEND_ENDPOINTS"] = json.dumps(entries)
    compose.write_text(yaml.safe_dump(data, sort_keys=False))
    monkeypatch.setenv("COMPOSE_PROFILES", "8b,4b")
    code, out = check_on("rtx4090", project, tmp_path, monkeypatch, capsys)
    assert code == 1, out
    assert "8b and 4b cannot run at the same time on GPU 0 (NVIDIA GeForce RTX 4090" in out
    assert "instead: run one at a time" in out and "a second GPU like this one" in out


def test_a_default_that_cannot_start_fails_and_names_the_alternative(
    project: Path, tmp_path: Path, monkeypatch, capsys
) -> None:
    code, out = check_on("rtx3060", project, tmp_path, monkeypatch, capsys)
    assert code == 1
    assert "error" in out and "4b cannot start: the weights" in out and "the FP8 profile 4b-fp8" in out
    assert "warning" in out and "8b cannot start" in out  # not in the default set: a warning only
    code, out = check_on("rtx3060", project, tmp_path, monkeypatch, capsys, "--gpu", "l40s")  # named GPU wins
    assert code == 0 and "(as given with --gpu)" in out


def test_profiles_named_together_are_placed_too(project: Path, tmp_path: Path, monkeypatch, capsys) -> None:
    code, out = check_on("l40s", project, tmp_path, monkeypatch, capsys, "8b", "4b-fp8")
    assert code == 0 and "placement (8b + 4b-fp8): 8b + 4b-fp8: together on one GPU" in out
    code, out = check_on("l4", project, tmp_path, monkeypatch, capsys, "8b-fp8", "4b")
    assert code == 1 and "8b-fp8 and 4b cannot run at the same time" in out


def test_without_a_gpu_the_placement_is_not_checked_and_says_so(project: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("SERVE_GPU", raising=False)
    monkeypatch.chdir(project)
    assert main(["--profiles-dir", str(project / "profiles"), "check"]) == 0
    assert "GPU: not checked: no NVIDIA GPU found (nvidia-smi is not on PATH)" in capsys.readouterr().out
