"""The serve CLI installs on its own (no vLLM, no torch, no compose-spec) as the `serve` console script, and
plans and checks correctly in a fresh environment."""

from __future__ import annotations

import json
import subprocess
import venv
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_fresh_venv_with_only_the_declared_dependencies_runs_plan_and_check(tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = env_dir / "bin" / "python"
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", str(REPO)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    listed = subprocess.run(
        [str(python), "-m", "pip", "list"], capture_output=True, text=True, timeout=120
    ).stdout
    assert "torch" not in listed and "vllm" not in listed
    assert "compose-spec" not in listed and "compose_spec" not in listed  # an optional extra
    # From another folder, so the installed package (not the checkout) answers; profiles via the variable.
    env = {"PATH": "/usr/bin:/bin", "SERVE_PROFILES_DIR": str(REPO / "profiles")}
    plan = subprocess.run(
        [str(python), "-m", "serve", "plan", "8b", "--gpu", "h100", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert plan.returncode == 0, plan.stderr
    result = json.loads(plan.stdout)["profiles"][0]
    assert abs(result["weights_gib"] - 16.3) / 16.3 < 0.05 and result["kv_bytes_per_token"] == 147_456
    check = subprocess.run(
        [str(env_dir / "bin" / "serve"), "check", "--compose-file", str(REPO / "docker-compose.yml")],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "check passed" in check.stdout
    # Without compose-spec the structure is still checked, and check says what it skipped.
    assert "compose-spec is not installed" in check.stdout and "skipped" in check.stdout
    # The console script names itself in its help, and the wheel carries the page's endpoint model.
    help_text = subprocess.run(
        [str(env_dir / "bin" / "serve"), "--help"], cwd=tmp_path, env=env, capture_output=True, text=True
    ).stdout
    assert help_text.startswith("usage: serve ")
