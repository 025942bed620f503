"""The variables a setting may come from: a `.env` file, overridden by the process environment (as Compose does)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from dotenv import dotenv_values


def environ_with_dotenv(dotenv_file: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """`.env` values (not expanded, like Compose; keys without `=` ignored), then `environ` (default os.environ).

    An explicit `environ` replaces the process environment, so tests and `serve check` see only what they pass.
    """
    found = dotenv_values(dotenv_file, interpolate=False) if dotenv_file.is_file() else {}
    return {
        **{key: value for key, value in found.items() if value is not None},
        **(os.environ if environ is None else environ),
    }
