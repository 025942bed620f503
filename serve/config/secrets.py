"""Secrets (VLLM_API_KEY, HF_TOKEN): from the environment, else `.env`, else the git-ignored `secrets.env`.

`.env` is committed, so secrets belong in `secrets.env` (an example is committed as secrets.env.example).
docker-compose.yml reads the same file (`env_file`), with the same order: a value in the shell or `.env`
wins over the file. Empty values count as unset, as they do for the SERVE_* overrides.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values
from pydantic import BaseModel, Field, SecretStr

SECRETS_FILE = "secrets.env"
DOTENV_FILE = ".env"
ENVIRONMENT = "the environment"
# What the stack reads as secrets: vLLM's key on /v1/* (the page gets it too) and the Hugging Face token.
SECRET_VARIABLES = ("VLLM_API_KEY", "HF_TOKEN")


class Secret(BaseModel):
    """One secret found, and where: messages name the source, never the value."""

    name: str = Field(description="Variable name, e.g. VLLM_API_KEY.")
    value: SecretStr = Field(description="The value; SecretStr so it never shows in a repr or a log.")
    source: str = Field(description="Where it came from: the environment, .env or secrets.env.")


def _file_values(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    return {key: value for key, value in dotenv_values(path, interpolate=False).items() if value}


def find_secrets(directory: Path, environ: Mapping[str, str] | None = None) -> dict[str, Secret]:
    """SECRET_VARIABLES found in `environ` (default os.environ), then directory/.env, then directory/secrets.env."""
    environ = os.environ if environ is None else environ
    sources: list[tuple[str, Mapping[str, str]]] = [
        (ENVIRONMENT, environ),
        (DOTENV_FILE, _file_values(directory / DOTENV_FILE)),
        (SECRETS_FILE, _file_values(directory / SECRETS_FILE)),
    ]
    found: dict[str, Secret] = {}
    for name in SECRET_VARIABLES:
        for source, values in sources:
            if value := (values.get(name) or "").strip():
                found[name] = Secret(name=name, value=SecretStr(value), source=source)
                break
    return found


def secrets_environment(secrets: Mapping[str, Secret]) -> dict[str, str]:
    """The secrets as variables for a child process (vLLM reads VLLM_API_KEY and HF_TOKEN itself)."""
    return {name: secret.value.get_secret_value() for name, secret in secrets.items()}


def secret_warnings(directory: Path) -> list[tuple[Path, str]]:
    """(file, problem) for secrets where they would leak: in the committed .env, or in a secrets.env that
    other users of the machine can read."""
    dotenv = directory / DOTENV_FILE
    warnings = [
        (
            dotenv,
            f"{name} is set in .env, which is committed to git; move it to {SECRETS_FILE} (git-ignored, read "
            f"the same way; see {SECRETS_FILE}.example)",
        )
        for name in SECRET_VARIABLES
        if name in _file_values(dotenv)
    ]
    path = directory / SECRETS_FILE
    if path.is_file() and _file_values(path) and path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        warnings.append((path, f"readable by other users of this machine; run chmod 600 {path}"))
    return warnings
