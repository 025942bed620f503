"""A profile's vLLM options, split into what the chart has a vllmConfig field for and extraArgs for the rest.

Nothing is listed by hand: every key of the profile file goes somewhere, converted to flags exactly as vLLM
converts a `--config` file (FlexibleArgumentParser.load_config_file in vLLM 0.32), so an option added to a
profile (the video budget, a new cache setting) reaches the pods without touching this code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from serve.config.profile import Profile, ProfileError, read_profile_file

# Profile keys with a vllmConfig field (or positional argument) of their own, set from the sizing or the
# profile by serve.k8s.values.
CHART_FIELDS = frozenset(
    {
        "model",
        "max-model-len",
        "gpu-memory-utilization",
        "enable-prefix-caching",
        "dtype",
        "tensor-parallel-size",
        "max-num-seqs",
        "enable-chunked-prefill",
    }
)
# The pod's address is the chart's: it runs `vllm serve --host 0.0.0.0 --port 8000` and its Service maps
# 80 -> 8000. A profile's port is its compose slot, meaningless in a pod.
POD_ADDRESS_KEYS = frozenset({"host", "port"})
# Options that have no place in a pod's command line, and what to do instead. Secrets would sit in the
# values in plain text; replicas are pods, each with its own GPUs.
REFUSED_KEYS = {
    "api-key": "not written into Helm values, where it would be stored in plain text; the API key comes "
    "from a Kubernetes Secret (see --api-key-secret)",
    "hf-token": "not written into Helm values, where it would be stored in plain text; the Hugging Face "
    "token comes from a Kubernetes Secret (see --hf-token-secret)",
    "data-parallel-size": "on Kubernetes each replica is a pod of its own: use --replicas",
}


class ProfileFlags(BaseModel):
    """What one profile becomes in its modelSpec."""

    chart_fields: dict[str, Any] = Field(
        description="Profile keys with a chart field, values as in the profile."
    )
    extra_args: list[str] = Field(description="vLLM flags for every other key, in the profile's order.")
    dropped: list[str] = Field(description="Keys that do not apply in a pod (its address).")


def config_file_args(key: str, value: Any) -> list[str]:
    """One profile key as vLLM turns a config-file entry into flags: true -> --key, false -> --no-key, a list
    -> --key a b (an empty list: nothing), a mapping -> --key '<json>', anything else -> --key value."""
    if isinstance(value, bool):
        return [f"--{key}" if value else f"--no-{key}"]
    if isinstance(value, list):
        return [f"--{key}", *(str(item) for item in value)] if value else []
    if isinstance(value, dict):
        return [f"--{key}", json.dumps(value)]
    return [f"--{key}", str(value)]


def split_profile(profile: Profile, replace: Mapping[str, object] | None = None) -> ProfileFlags:
    """The profile file's keys (overrides applied, then `replace`: what the placement changes) sorted into chart
    fields, extraArgs and dropped keys."""
    raw = {**read_profile_file(profile.path), **profile.overrides.as_profile_keys(), **(replace or {})}
    for key, reason in REFUSED_KEYS.items():
        if key in raw and not (key == "data-parallel-size" and str(raw[key]) == "1"):  # 1: the default
            raise ProfileError(f"{profile.path}: {key}: {reason}. Remove it from the profile.")
    chart = {key: value for key, value in raw.items() if key in CHART_FIELDS}
    extra: list[str] = []
    for key, value in raw.items():
        if key not in CHART_FIELDS and key not in POD_ADDRESS_KEYS:
            extra += config_file_args(key, value)
    return ProfileFlags(
        chart_fields=chart, extra_args=extra, dropped=[key for key in raw if key in POD_ADDRESS_KEYS]
    )
