"""Secrets (VLLM_API_KEY, HF_TOKEN): one git-ignored file that `serve` and docker compose both read, the
environment and .env winning over it, and warnings where a secret would leak.

The end-to-end proof is in the session server (tests/conftest.py): its key is only in secrets.env, and
test_security.py's 401s and test_up.py's ready message show vLLM required it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from frontend.settings import FrontendSettings
from serve.check import run_check
from serve.compose.file import load_compose
from serve.config.secrets import SECRET_VARIABLES, SECRETS_FILE, find_secrets, secret_warnings
from serve.launcher.up import api_key_for, key_status

REPO = Path(__file__).resolve().parents[1]


def write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.write_text(text)
    path.chmod(mode)
    return path


# ----------------------------------------------------------------------------------------------- serve side


def test_the_environment_wins_over_dotenv_which_wins_over_secrets_env(tmp_path: Path) -> None:
    write(tmp_path / ".env", "HF_TOKEN=from-dotenv\n")
    write(tmp_path / SECRETS_FILE, "VLLM_API_KEY=from-file\nHF_TOKEN=from-file-too\n")
    found = find_secrets(tmp_path, {})
    assert found["VLLM_API_KEY"].value.get_secret_value() == "from-file"
    assert found["VLLM_API_KEY"].source == SECRETS_FILE
    assert (found["HF_TOKEN"].value.get_secret_value(), found["HF_TOKEN"].source) == ("from-dotenv", ".env")
    found = find_secrets(tmp_path, {"VLLM_API_KEY": "from-env"})
    assert (found["VLLM_API_KEY"].value.get_secret_value(), found["VLLM_API_KEY"].source) == (
        "from-env",
        "the environment",
    )


def test_empty_values_count_as_unset_and_the_key_never_shows_in_a_repr(tmp_path: Path) -> None:
    write(tmp_path / SECRETS_FILE, "VLLM_API_KEY= s3cret \nHF_TOKEN=\n")
    found = find_secrets(tmp_path, {"VLLM_API_KEY": "", "HF_TOKEN": "  "})
    assert found["VLLM_API_KEY"].value.get_secret_value() == "s3cret"
    assert "HF_TOKEN" not in found
    assert "s3cret" not in repr(found) and "s3cret" not in str(found)


def test_serve_up_takes_the_key_from_secrets_env_and_says_where_it_came_from(tmp_path: Path) -> None:
    from serve.config.profile import load_profile

    write(tmp_path / SECRETS_FILE, "VLLM_API_KEY=k-from-file\n")
    profile = load_profile(REPO / "profiles" / "4b.yaml", {})
    key = api_key_for(profile, [], find_secrets(tmp_path, {}))
    assert key is not None and key.value == "k-from-file"
    assert key_status(key) == "API key: required (VLLM_API_KEY from secrets.env)"
    assert api_key_for(profile, ["--api-key", "k2"], find_secrets(tmp_path, {})).source == "--api-key"
    assert key_status(None).startswith("API key: none")


def test_secrets_file_is_git_ignored_and_its_example_documents_every_secret() -> None:
    ignored = subprocess.run(
        ["git", "check-ignore", "--no-index", SECRETS_FILE], cwd=REPO, capture_output=True, text=True
    )
    assert ignored.returncode == 0, "secrets.env must be git-ignored"
    example = (REPO / f"{SECRETS_FILE}.example").read_text()
    for name in SECRET_VARIABLES:
        assert f"\n{name}=\n" in example  # empty: copying the example sets nothing by accident
    assert "chmod 600" in example


def test_check_warns_about_a_secret_in_the_committed_dotenv_and_a_readable_secrets_file(
    tmp_path: Path,
) -> None:
    write(tmp_path / ".env", "VLLM_API_KEY=oops\n")
    write(tmp_path / SECRETS_FILE, "HF_TOKEN=hf_x\n", mode=0o644)
    warnings = [f"{path.name}: {problem}" for path, problem in secret_warnings(tmp_path)]
    assert any(w.startswith(".env: VLLM_API_KEY is set in .env, which is committed") for w in warnings)
    assert any(w.startswith("secrets.env: readable by other users") and "chmod 600" in w for w in warnings)
    (tmp_path / SECRETS_FILE).chmod(0o600)
    (tmp_path / ".env").write_text("COMPOSE_PROFILES=4b\n")
    assert secret_warnings(tmp_path) == []


def test_serve_check_reports_those_warnings_without_failing(tmp_path: Path) -> None:
    for name in ("profiles", "docker"):
        shutil.copytree(REPO / name, tmp_path / name)
    shutil.copy(REPO / "docker-compose.yml", tmp_path)
    write(tmp_path / ".env", "COMPOSE_PROFILES=4b\nHF_TOKEN=hf_oops\n")
    report = run_check(tmp_path / "profiles", tmp_path / "docker-compose.yml", environ={})
    assert report.ok
    assert any("HF_TOKEN is set in .env" in str(w) for w in report.warnings)


# --------------------------------------------------------------------------------------------- compose side


@pytest.fixture
def project(tmp_path: Path) -> Path:
    shutil.copy(REPO / "docker-compose.yml", tmp_path)
    return tmp_path


def test_compose_gives_secrets_env_to_every_model_service_and_the_page(project: Path, page_settings) -> None:
    write(project / SECRETS_FILE, "VLLM_API_KEY=k-file\nHF_TOKEN=hf-file\n")
    services = load_compose(project / "docker-compose.yml", {}).services
    for name in ("vllm-8b", "vllm-4b"):
        assert services[name].env_files == [(project / SECRETS_FILE).absolute()]
        assert services[name].environment["VLLM_API_KEY"] == "k-file"
        assert services[name].environment["HF_TOKEN"] == "hf-file"
    page = services["frontend"].environment
    assert page["VLLM_API_KEY"] == "k-file" and page["FRONTEND_API_KEY"] == ""
    # What the page makes of that environment: the servers' key.
    key = page_settings(page).api_key
    assert key is not None and key.get_secret_value() == "k-file"


@pytest.fixture
def page_settings(monkeypatch: pytest.MonkeyPatch):
    """FrontendSettings read from exactly the given container environment."""

    def read(environment: dict[str, str]) -> FrontendSettings:
        for name in list(os.environ):
            monkeypatch.delenv(name)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        return FrontendSettings()

    return read


def test_compose_starts_without_a_secrets_file(project: Path, page_settings) -> None:
    services = load_compose(project / "docker-compose.yml", {}).services
    assert "VLLM_API_KEY" not in services["vllm-4b"].environment
    assert page_settings(services["frontend"].environment).api_key is None


def test_the_shell_or_dotenv_key_wins_over_secrets_env_in_compose_too(project: Path, page_settings) -> None:
    write(project / SECRETS_FILE, "VLLM_API_KEY=k-file\n")
    services = load_compose(project / "docker-compose.yml", {"VLLM_API_KEY": "k-shell"}).services
    # The model services get it under a transport name that the entrypoint prefers (tested below).
    assert services["vllm-4b"].environment["SERVE_ENV_VLLM_API_KEY"] == "k-shell"
    assert page_settings(services["frontend"].environment).api_key.get_secret_value() == "k-shell"


FAKE_VLLM = """#!/bin/sh
printf 'VLLM_API_KEY=%s\\nHF_TOKEN=%s\\nleft=%s\\n' "${VLLM_API_KEY:-}" "${HF_TOKEN:-}" "${SERVE_ENV_VLLM_API_KEY:-}"
"""


@pytest.mark.parametrize(
    ("env_file_value", "shell_value", "expected"),
    [("k-file", "", "k-file"), ("k-file", "k-shell", "k-shell"), ("", "  k-shell ", "k-shell"), ("", "", "")],
)
def test_the_vllm_entrypoint_prefers_the_shell_value_when_it_is_set(
    tmp_path: Path, env_file_value: str, shell_value: str, expected: str
) -> None:
    """docker/vllm-entrypoint.sh with a fake `vllm` that prints what it was given (no Docker here)."""
    shutil.copytree(REPO / "profiles", tmp_path / "profiles")  # the entrypoint plans both slots
    (tmp_path / "bin").mkdir()
    write(tmp_path / "bin" / "vllm", FAKE_VLLM, mode=0o755)
    env = {
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "SERVE_PROFILES_DIR": str(tmp_path / "profiles"),
        "SERVE_ROOT": str(REPO),  # where compose mounts ./serve
        "SERVE_PYTHON": sys.executable,
        "SERVE_PROFILE": "4b",
        "VLLM_API_KEY": env_file_value,  # what env_file (secrets.env) put there
        "SERVE_ENV_VLLM_API_KEY": shell_value,  # what compose interpolated from the shell / .env
        "HF_TOKEN": "hf-file",
    }
    result = subprocess.run(
        ["sh", str(REPO / "docker" / "vllm-entrypoint.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"VLLM_API_KEY={expected}", "HF_TOKEN=hf-file", "left="]
    assert expected == "" or expected not in result.stderr  # the entrypoint logs no secret
