"""Per-family overrides from the environment or .env: change a profile without editing its YAML.

`SERVE_8B_GPU_MEMORY_UTILIZATION=0.92` applies to 8b, 8b-fp8, 8b-thinking and 8b-long. The compose entrypoint
(docker/vllm-entrypoint.sh -> serve.launcher.container) reads the same variables inside the container, so both
paths pass the same flags (a test keeps them in step).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

from pydantic import BaseModel, Field

from serve.config.environment import environ_with_dotenv

# Profile key -> variable suffix, in the order the flags are passed (the entrypoint script uses it too).
OVERRIDABLE_KEYS: dict[str, str] = {
    "gpu-memory-utilization": "GPU_MEMORY_UTILIZATION",
    "max-model-len": "MAX_MODEL_LEN",
    "quantization": "QUANTIZATION",
}


# SERVE_<FAMILY>_GPU=1 pins the family's instance to GPU 1 (the placement chooses otherwise).
GPU_SUFFIX = "GPU"


def variable_prefix(family: str) -> str:
    return f"SERVE_{family.upper().replace('-', '_').replace('.', '_')}_"


class ProfileOverrides(BaseModel):
    """Values found for one family; None means the profile's own value stands."""

    family: str = Field(description="Profile family, e.g. '8b'; names the variables.")
    values: dict[str, str] = Field(default_factory=dict, description="Profile key -> raw value from the env.")
    gpu: str | None = Field(None, description="SERVE_<FAMILY>_GPU: the GPU index chosen by hand, unparsed.")

    @classmethod
    def for_family(
        cls, family: str, environ: Mapping[str, str] | None = None, *, env_file: Path | None = None
    ) -> ProfileOverrides:
        """Read SERVE_<FAMILY>_* from `environ` (default: .env in the working directory, then os.environ).

        Empty values count as unset, as docker compose passes `${VAR:-}` through as an empty string.
        """
        if environ is None:
            environ = environ_with_dotenv(env_file or Path(".env"))
        prefix = variable_prefix(family)
        values = {key: environ.get(prefix + suffix, "").strip() for key, suffix in OVERRIDABLE_KEYS.items()}
        gpu = environ.get(prefix + GPU_SUFFIX, "").strip() or None
        return cls(family=family, values={key: value for key, value in values.items() if value}, gpu=gpu)

    @property
    def gpu_variable(self) -> str:
        return variable_prefix(self.family) + GPU_SUFFIX

    def variable_names(self) -> dict[str, str]:
        """Profile key -> the variable that set it (for error messages)."""
        prefix = variable_prefix(self.family)
        return {key: prefix + OVERRIDABLE_KEYS[key] for key in self.values}

    def as_profile_keys(self) -> dict[str, str]:
        return dict(self.values)

    def as_cli_args(self, without: Collection[str] = ()) -> list[str]:
        """The values as vLLM flags, in OVERRIDABLE_KEYS order; `without` leaves keys out (the placement's)."""
        args: list[str] = []
        for key in OVERRIDABLE_KEYS:
            if key in self.values and key not in without:
                args += [f"--{key}", self.values[key]]
        return args
