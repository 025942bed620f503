"""The shape of a compose file, checked without the Compose Specification validator (compose-spec).

compose-spec (Rust-backed) is optional: without it, `serve check` still refuses unknown top-level and
service keys and values of the wrong kind where this project reads them, and says what it did not check
(value formats such as durations or IP addresses, nested keys). Key names are the Compose Specification's
(schema/compose-spec.json of compose-spec/compose-go, 2026-07).
"""

from __future__ import annotations

from difflib import get_close_matches
from pathlib import Path
from typing import Any

from serve.compose.interpolation import ComposeError

TOP_LEVEL_KEYS = frozenset(
    ("configs", "include", "models", "name", "networks", "secrets", "services", "version", "volumes")
)
SERVICE_KEYS = frozenset(
    [
        "annotations",
        "attach",
        "blkio_config",
        "build",
        "cap_add",
        "cap_drop",
        "cgroup",
        "cgroup_parent",
        "command",
        "configs",
        "container_name",
        "cpu_count",
        "cpu_percent",
        "cpu_period",
        "cpu_quota",
        "cpu_rt_period",
        "cpu_rt_runtime",
        "cpu_shares",
        "cpus",
        "cpuset",
        "credential_spec",
        "depends_on",
        "deploy",
        "develop",
        "device_cgroup_rules",
        "devices",
        "dns",
        "dns_opt",
        "dns_search",
        "domainname",
        "entrypoint",
        "env_file",
        "environment",
        "expose",
        "extends",
        "external_links",
        "extra_hosts",
        "gpus",
        "group_add",
        "healthcheck",
        "hostname",
        "image",
        "init",
        "ipc",
        "isolation",
        "label_file",
        "labels",
        "links",
        "logging",
        "mac_address",
        "mem_limit",
        "mem_reservation",
        "mem_swappiness",
        "memswap_limit",
        "models",
        "network_mode",
        "networks",
        "oom_kill_disable",
        "oom_score_adj",
        "pid",
        "pids_limit",
        "platform",
        "ports",
        "post_start",
        "pre_start",
        "pre_stop",
        "privileged",
        "profiles",
        "provider",
        "pull_policy",
        "pull_refresh_after",
        "read_only",
        "restart",
        "runtime",
        "scale",
        "secrets",
        "security_opt",
        "shm_size",
        "stdin_open",
        "stop_grace_period",
        "stop_signal",
        "storage_opt",
        "sysctls",
        "tmpfs",
        "tty",
        "ulimits",
        "use_api_socket",
        "user",
        "userns_mode",
        "uts",
        "volumes",
        "volumes_from",
        "working_dir",
    ]
)
# What the typed view reads, and the YAML kinds the specification allows for it.
_KINDS: dict[str, tuple[type, ...]] = {
    "image": (str,),
    "profiles": (list,),
    "environment": (dict, list),
    "env_file": (str, list),
    "ports": (list,),
    "volumes": (list,),
    "healthcheck": (dict,),
    "depends_on": (dict, list),
    "deploy": (dict,),
    "ipc": (str,),
    "restart": (str,),
    "entrypoint": (str, list),
    "command": (str, list),
    "networks": (dict, list),
}
SKIPPED_WITHOUT_SPEC = (
    "value formats (durations, IP addresses, restart policies), nested keys and everything this project "
    "does not read"
)


def _unknown(keys: list[str], known: frozenset[str], path: Path, where: str | None, what: str) -> None:
    for key in keys:
        if key not in known and not key.startswith("x-"):
            close = get_close_matches(key, known, n=1)
            fix = f"did you mean {close[0]!r}?" if close else "see the Compose Specification"
            raise ComposeError(f"unknown {what} {key!r}", file=path, key=where, fix=fix)


def validate_structure(data: dict[str, Any], path: Path) -> None:
    """Raise ComposeError on an unknown top-level or service key, or a value of the wrong kind."""
    _unknown([str(key) for key in data], TOP_LEVEL_KEYS, path, None, "top-level key")
    services = data.get("services")
    if services is None:
        return
    if not isinstance(services, dict):
        raise ComposeError("must be a mapping of service names", file=path, key="services")
    for name, spec in services.items():
        where = f"services.{name}"
        if not isinstance(spec, dict):
            raise ComposeError("must be a mapping of service keys", file=path, key=where)
        _unknown([str(key) for key in spec], SERVICE_KEYS, path, where, "service key")
        for key, kinds in _KINDS.items():
            if key in spec and not isinstance(spec[key], kinds):
                expected = " or ".join({dict: "a mapping", list: "a list", str: "a string"}[k] for k in kinds)
                raise ComposeError(f"must be {expected}", file=path, key=f"{where}.{key}")
