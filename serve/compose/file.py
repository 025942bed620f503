"""docker-compose.yml without Docker: interpolation (serve.compose.interpolation) and the schema check, then a typed
view of the services that `serve check` cross-checks against the profiles.

Order as in Docker Compose: parse the YAML (anchors and `<<` merge keys resolved), interpolate every string
value (keys and comments never), validate the structure (serve.compose.structure) and, when the optional
PyPI `compose-spec` is installed, against the whole Compose Specification.
"""

from __future__ import annotations

import importlib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from dotenv import dotenv_values
from pydantic import BaseModel, ConfigDict, Field, ValidationError, computed_field

from serve.compose.frontend_endpoint import Endpoint as FrontendEndpoint
from serve.compose.interpolation import ComposeError, compose_env, interpolate
from serve.compose.structure import validate_structure

__all__ = [
    "ComposeError",
    "ComposeFile",
    "ComposeService",
    "FrontendEndpoint",
    "compose_env",
    "interpolate",
    "load_compose",
]

VLLM_IMAGE = "vllm/vllm-openai"
GATEWAY_ENTRYPOINT = "gateway-entrypoint.sh"
SPEC_URL = "https://docs.docker.com/reference/compose-file/"


# ------------------------------------------------------------------------------------------------ typed view


class PublishedPort(BaseModel):
    model_config = ConfigDict(frozen=True)

    host_ip: str | None = Field(description="Host address bound; None = every interface (Compose's default).")
    host_port: int | None = Field(description="Host port; None = an ephemeral port picked by the engine.")
    container_port: int = Field(description="Port inside the container.")
    protocol: str = Field(default="tcp", description="tcp or udp.")


class Mount(BaseModel):
    model_config = ConfigDict(frozen=True)

    source: str | None = Field(description="Host path (bind) or volume name; None = anonymous volume.")
    target: str = Field(description="Path inside the container.")
    type: Literal["bind", "volume", "tmpfs", "npipe", "cluster", "image"] = Field(description="Mount type.")
    read_only: bool = Field(default=False, description="Mounted read-only (`:ro` / read_only: true).")


class DependsOn(BaseModel):
    model_config = ConfigDict(frozen=True)

    condition: Literal["service_started", "service_healthy", "service_completed_successfully"] = Field(
        default="service_started", description="What the dependency must reach before this service starts."
    )
    required: bool = Field(
        default=True, description="False: Compose only warns when the dependency is disabled or missing."
    )


class ComposeService(BaseModel):
    name: str = Field(description="Service name (also its host name in the compose network).")
    image: str | None = Field(description="Image reference after interpolation.")
    compose_profiles: list[str] = Field(description="Compose `profiles:`; empty = always started.")
    environment: dict[str, str] = Field(
        description="Container environment after interpolation: env_file values, then `environment`."
    )
    env_files: list[Path] = Field(description="`env_file:` entries (absolute), whether they exist or not.")
    published_ports: list[PublishedPort] = Field(description="`ports:` in either syntax.")
    mounts: list[Mount] = Field(description="`volumes:` in either syntax.")
    healthcheck_test: list[str] | None = Field(description="Healthcheck command; None = none or disabled.")
    depends_on: dict[str, DependsOn] = Field(description="Dependencies by service name.")
    ipc: str | None = Field(description="IPC mode, e.g. host.")
    restart: str | None = Field(description="Restart policy.")
    gpu_reserved: bool = Field(
        description="deploy.resources.reservations.devices asks for the gpu capability."
    )
    entrypoint: list[str] = Field(
        default_factory=list, description="`entrypoint:` as a list; [] = the image's."
    )
    command: list[str] = Field(default_factory=list, description="`command:` as a list; [] = the image's.")
    networks: list[str] = Field(
        default_factory=lambda: ["default"], description="Networks it joins; ['default'] when none is named."
    )

    @computed_field  # type: ignore[prop-decorator]
    @property
    def is_gateway(self) -> bool:
        """Runs the gateway (docker/gateway-entrypoint.sh) rather than a model."""
        return any(arg.endswith(GATEWAY_ENTRYPOINT) for arg in self.entrypoint)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def is_vllm(self) -> bool:
        """Runs a model: the official vLLM image, not as the gateway."""
        image = self.image or ""
        return (image.startswith(VLLM_IMAGE + ":") or image == VLLM_IMAGE) and not self.is_gateway

    @computed_field  # type: ignore[prop-decorator]
    @property
    def mounts_docker_socket(self) -> bool:
        """Mounts the Docker socket (which gives root on the host to whoever controls the container)."""
        return any("docker.sock" in f"{mount.source or ''} {mount.target}" for mount in self.mounts)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def profile_name(self) -> str | None:
        """The profile file (profiles/NAME.yaml) the entrypoint runs: SERVE_PROFILE after interpolation."""
        return self.environment.get("SERVE_PROFILE", "").strip() or None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def healthcheck_port(self) -> int | None:
        """Port of the first http(s) URL in the healthcheck command."""
        for arg in self.healthcheck_test or []:
            if url := re.search(r"https?://[^\s'\"]+", arg):
                return _url_port(url.group())
        return None


class ComposeFile(BaseModel):
    path: Path = Field(description="The compose file read.")
    name: str | None = Field(description="Top-level project name.")
    services: dict[str, ComposeService] = Field(description="Services in file order.")
    volumes: list[str] = Field(description="Named volumes declared at top level.")
    frontend_endpoints: list[FrontendEndpoint] = Field(
        description="FRONTEND_ENDPOINTS of the service that sets it, read with the page's own model."
    )
    spec_checked: bool = Field(
        description="Validated against the whole Compose Specification (the optional compose-spec package)."
    )

    networks: list[str] = Field(default_factory=list, description="Networks declared at top level.")

    def vllm_services(self) -> list[ComposeService]:
        """Services running a model in the official vLLM image (profile_name / healthcheck_port are the
        cross-check)."""
        return [service for service in self.services.values() if service.is_vllm]

    def gateway(self) -> ComposeService | None:
        """The gateway service, if the file has one."""
        return next((service for service in self.services.values() if service.is_gateway), None)


# --------------------------------------------------------------------------------------------------- loading


def load_compose(path: Path, environ: Mapping[str, str] | None = None) -> ComposeFile:
    """Read, interpolate and validate a compose file as `docker compose config` would; raise ComposeError."""
    env = compose_env(path, environ)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise ComposeError(f"cannot read YAML: {error}", file=path) from error
    if not isinstance(raw, dict):
        raise ComposeError("not a mapping of top-level keys", file=path, fix="start with `services:`")
    data = _interpolate_tree(raw, env, path, "")
    validate_structure(data, path)
    spec_checked = _validate_spec(data, path)
    return _build(data, path, env, spec_checked)


def _interpolate_tree(node: Any, env: Mapping[str, str], path: Path, key: str) -> Any:
    if isinstance(node, str):
        try:
            return interpolate(node, env)
        except ComposeError as error:
            raise error.located(path, key) from None
    if isinstance(node, dict):
        return {k: _interpolate_tree(v, env, path, f"{key}.{k}" if key else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_interpolate_tree(v, env, path, f"{key}[{i}]") for i, v in enumerate(node)]
    return node


def _validate_spec(data: dict[str, Any], path: Path) -> bool:
    """Validate against the Compose Specification with compose-spec; False when it is not installed."""
    try:
        py_compose = importlib.import_module("compose_spec").PyCompose
    except ImportError:
        return False
    # compose-spec's own YAML reader rejects `<<` and `${...}` in typed fields, so it gets the resolved tree
    # re-serialised; YAML rather than JSON because only its errors carry the key path. (Its from_dict goes
    # through a pydantic model that silently drops unknown keys, so it would not catch typos.)
    try:
        py_compose.from_yaml(yaml.safe_dump(data, sort_keys=False)).validate()
    except ValueError as error:
        message = re.sub(r" at line \d+ column \d+$", "", str(error))  # lines of the re-serialised text
        key, _, problem = (
            message.partition(": ") if re.match(r"[\w.\-\[\]]+: ", message) else ("", "", message)
        )
        raise ComposeError(
            problem, file=path, key=key or None, fix=f"see the Compose Specification, {SPEC_URL}"
        ) from None
    return True


def _build(data: dict[str, Any], path: Path, env: Mapping[str, str], spec_checked: bool) -> ComposeFile:
    services = {name: _service(name, spec, env, path) for name, spec in (data.get("services") or {}).items()}
    volumes = list(data.get("volumes") or {})
    networks = list(data.get("networks") or {})
    for service in services.values():
        for dependency in service.depends_on:
            if dependency not in services:
                raise ComposeError(
                    f"depends on undefined service {dependency!r}",
                    file=path,
                    key=f"services.{service.name}.depends_on",
                    fix=f"define it or remove the edge; services: {', '.join(services)}",
                )
        for network in service.networks:
            if network != "default" and network not in networks:
                raise ComposeError(
                    f"network {network!r} is not declared",
                    file=path,
                    key=f"services.{service.name}.networks",
                    fix="add it under the top-level `networks:`",
                )
        for mount in service.mounts:
            if mount.type == "volume" and mount.source and mount.source not in volumes:
                raise ComposeError(
                    f"named volume {mount.source!r} is not declared",
                    file=path,
                    key=f"services.{service.name}.volumes",
                    fix="add it under the top-level `volumes:`",
                )
    return ComposeFile(
        path=path,
        name=data.get("name"),
        services=services,
        volumes=volumes,
        networks=networks,
        frontend_endpoints=_frontend_endpoints(services, path),
        spec_checked=spec_checked,
    )


def _service(name: str, spec: dict[str, Any], env: Mapping[str, str], path: Path) -> ComposeService:
    resources = (spec.get("deploy") or {}).get("resources") or {}
    devices = (resources.get("reservations") or {}).get("devices") or []
    env_files = _env_files(spec.get("env_file"), path, f"services.{name}.env_file")
    return ComposeService(
        name=name,
        image=spec.get("image"),
        compose_profiles=list(spec.get("profiles") or []),
        environment=_environment(spec.get("environment"), env, _env_file_values(env_files)),
        env_files=[file for file, _ in env_files],
        published_ports=[port for entry in spec.get("ports") or [] for port in _ports(entry)],
        mounts=[_mount(entry) for entry in spec.get("volumes") or []],
        healthcheck_test=_healthcheck_test(spec.get("healthcheck")),
        depends_on=_depends_on(spec.get("depends_on")),
        ipc=spec.get("ipc"),
        restart=spec.get("restart"),
        gpu_reserved=any("gpu" in (device.get("capabilities") or []) for device in devices),
        entrypoint=_command_list(spec.get("entrypoint")),
        command=_command_list(spec.get("command")),
        networks=list(spec.get("networks") or ["default"]),
    )


def _command_list(value: str | list[Any] | None) -> list[str]:
    """`entrypoint` / `command` in either syntax (a string is split as a shell would, roughly)."""
    if value is None:
        return []
    return value.split() if isinstance(value, str) else [str(arg) for arg in value]


def _scalar(value: Any) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def _env_files(value: str | list[Any] | None, path: Path, key: str) -> list[tuple[Path, bool]]:
    """(file, required) for each `env_file:` entry, relative to the compose file; a required one must exist."""
    entries = [value] if isinstance(value, str) else list(value or [])
    files = []
    for entry in entries:
        spec = entry if isinstance(entry, dict) else {"path": entry}
        file = (path.parent / str(spec["path"])).absolute()
        required = bool(spec.get("required", True))
        if required and not file.is_file():
            raise ComposeError(
                f"env file {file} does not exist",
                file=path,
                key=key,
                fix="create it, or mark the entry `required: false`",
            )
        files.append((file, required))
    return files


def _env_file_values(env_files: list[tuple[Path, bool]]) -> dict[str, str]:
    """The variables of the env files that exist, later files winning (as Compose reads them)."""
    values: dict[str, str] = {}
    for file, _ in env_files:
        if file.is_file():
            values.update({k: v for k, v in dotenv_values(file, interpolate=False).items() if v is not None})
    return values


def _environment(
    value: dict[str, Any] | list[str] | None, env: Mapping[str, str], from_files: Mapping[str, str]
) -> dict[str, str]:
    """env_file values overridden by `environment` (both syntaxes). A name without a value takes the variable
    from the environment; when the environment lacks it, Compose unsets it, env_file value included."""
    if isinstance(value, dict):
        pairs: list[tuple[str, Any]] = list(value.items())
    else:  # "NAME=value", or "NAME" alone
        pairs = [
            (item.split("=", 1)[0], item.split("=", 1)[1] if "=" in item else None) for item in value or []
        ]
    result = dict(from_files)
    for key, raw in pairs:
        if raw is None:
            if key in env:
                result[key] = env[key]
            else:
                result.pop(key, None)
        else:
            result[key] = _scalar(raw)
    return result


def _ports(entry: str | int | dict[str, Any]) -> list[PublishedPort]:
    if isinstance(entry, dict):
        published = entry.get("published")
        return [
            PublishedPort(
                host_ip=entry.get("host_ip"),
                host_port=int(published) if published not in (None, "") else None,
                container_port=int(entry["target"]),
                protocol=entry.get("protocol", "tcp"),
            )
        ]
    text, _, protocol = str(entry).partition("/")
    parts = text.rsplit(":", 2)
    container = parts[-1]
    host = parts[-2] if len(parts) > 1 else ""
    host_ip = parts[0].strip("[]") if len(parts) == 3 else None
    containers = _port_range(container)
    hosts: list[int | None] = list(_port_range(host)) if host else [None] * len(containers)
    return [
        PublishedPort(host_ip=host_ip or None, host_port=h, container_port=c, protocol=protocol or "tcp")
        for h, c in zip(hosts, containers, strict=False)
    ]


def _port_range(text: str) -> list[int]:
    low, _, high = text.partition("-")
    return list(range(int(low), int(high or low) + 1))


def _mount(entry: str | dict[str, Any]) -> Mount:
    if isinstance(entry, dict):
        return Mount(
            source=entry.get("source"),
            target=entry["target"],
            type=entry.get("type", "volume"),
            read_only=bool(entry.get("read_only", False)),
        )
    parts = entry.split(":")
    if len(parts) == 1:
        return Mount(source=None, target=parts[0], type="volume")
    source, target, *mode = parts
    is_path = source.startswith((".", "/", "~")) or "/" in source
    options = mode[0].split(",") if mode else []
    return Mount(
        source=source, target=target, type="bind" if is_path else "volume", read_only="ro" in options
    )


def _healthcheck_test(healthcheck: dict[str, Any] | None) -> list[str] | None:
    if not healthcheck or healthcheck.get("disable") or "test" not in healthcheck:
        return None
    test = healthcheck["test"]
    return ["CMD-SHELL", test] if isinstance(test, str) else [str(arg) for arg in test]


def _depends_on(value: list[str] | dict[str, Any] | None) -> dict[str, DependsOn]:
    if isinstance(value, list):
        return {name: DependsOn() for name in value}
    return {name: DependsOn.model_validate(spec or {}) for name, spec in (value or {}).items()}


def _frontend_endpoints(services: Mapping[str, ComposeService], path: Path) -> list[FrontendEndpoint]:
    for service in services.values():
        if (text := service.environment.get("FRONTEND_ENDPOINTS")) is not None:
            key = f"services.{service.name}.environment.FRONTEND_ENDPOINTS"
            try:
                entries = json.loads(text)
                if not isinstance(entries, list):
                    raise ValueError("not a JSON list")
                return [FrontendEndpoint.model_validate(entry) for entry in entries]
            except (ValueError, ValidationError) as error:
                raise ComposeError(
                    f"not a JSON list of endpoints: {error}",
                    file=path,
                    key=key,
                    fix='write [{"name": "...", "base_url": "http://service:port/v1"}, ...]',
                ) from None
    return []


def _url_port(url: str) -> int | None:
    parts = urlsplit(url)
    return parts.port or {"http": 80, "https": 443}.get(parts.scheme)
