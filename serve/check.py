"""`serve check`: every profile valid, docker-compose.yml agreeing with the profiles and the frontend, and the
configured default set able to start on this machine's GPU (or the one named with --gpu).

Behind the compose gateway the model services publish no port (their dev routes, open with
VLLM_SERVER_DEV_MODE, must stay on the compose network), the gateway fronts each of them, and the page's
endpoints are the gateway's models. No service mounts the Docker socket.

Clashes (ports, served names) only matter between instances that run at the same time: the vLLM services of
the compose file, or the profiles named together on the command line. Whether they fit is the placement's
call (serve.planner.placement), made on the GPUs found.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from serve.compose.file import ComposeError, ComposeFile, ComposeService, compose_env, load_compose
from serve.compose.frontend_endpoint import Endpoint
from serve.compose.gateway_entrypoint import DEFAULT_PORT, GatewayEntrypointError, upstreams
from serve.compose.structure import SKIPPED_WITHOUT_SPEC
from serve.config.environment import environ_with_dotenv
from serve.config.profile import Profile, ProfileError, load_profile, profile_paths, resolve_profile_path
from serve.config.secrets import DOTENV_FILE, secret_warnings
from serve.planner.detect import GpuSurvey
from serve.planner.model_facts import UnknownModelError, model_facts
from serve.planner.placement import Fit, Layout
from serve.planner.plan import MAX_GPU_SHARE, total_share
from serve.planner.resolve import Resolution, loader, resolve

SPEC_SKIPPED = (
    "checked without the Compose Specification validator (compose-spec is not installed; pip install "
    f"'qwen3-vl-stack[compose]'): skipped {SKIPPED_WITHOUT_SPEC}"
)


@dataclass(frozen=True)
class Finding:
    """One problem found; `where` is the file (and key) it is about. Warnings do not fail the check."""

    where: str
    message: str
    warning: bool = False

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class CheckReport:
    profiles: list[Profile]
    errors: list[Finding]
    warnings: list[Finding]
    gpu_lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


def check_model_limits(profile: Profile) -> list[Finding]:
    """max-model-len within what the checkpoint supports (known table or local config.json)."""
    s = profile.settings
    try:
        facts = model_facts(s.model)
    except UnknownModelError as exc:
        return [Finding(str(profile.path), f"model: {exc}; max-model-len not checked", warning=True)]
    if s.max_model_len > facts.max_context:
        return [
            Finding(
                f"{profile.path}: max-model-len",
                f"{s.max_model_len} is above the model's limit of {facts.max_context} tokens "
                f"({facts.source}); use at most {facts.max_context}",
            )
        ]
    return []


def check_run_together(profiles: Sequence[Profile], where: str) -> list[Finding]:
    """Instances that run at once need distinct ports and served names; shares set by hand that add up to
    more than one GPU's are worth a warning (whether they fit is the placement's call, on the GPUs found)."""
    findings = []
    ports = Counter(p.settings.port for p in profiles)
    for port, count in ports.items():
        if count > 1:
            names = ", ".join(p.name for p in profiles if p.settings.port == port)
            findings.append(Finding(where, f"port {port} is used by {names}; give each its own port"))
    served = Counter(name for p in profiles for name in p.settings.served_names)
    for name, count in served.items():
        if count > 1:
            names = ", ".join(p.name for p in profiles if name in p.settings.served_names)
            findings.append(
                Finding(where, f"served name {name!r} is used by {names}; clients could not tell them apart")
            )
    explicit = [p for p in profiles if p.explicit_share]
    total = total_share(p.explicit_share[0] for p in explicit if p.explicit_share)
    if len(explicit) > 1 and total > MAX_GPU_SHARE:
        findings.append(
            Finding(
                where,
                f"the gpu-memory-utilization set for {', '.join(p.name for p in explicit)} adds up to {total} "
                f"> {MAX_GPU_SHARE}: they can run together only on different GPUs; lower them or unset them "
                "(SERVE_<FAMILY>_GPU_MEMORY_UTILIZATION) to let the placement size them",
                warning=True,
            )
        )
    return findings


def check_placement(
    resolution: Resolution, default_set: Sequence[str], where: str, *, swapped: bool = False
) -> list[Finding]:
    """The instances in `default_set` start on the GPUs found, and together when there are several (or,
    `swapped` behind the gateway, one at a time: then it is said, not an error)."""
    placement = resolution.placement
    if placement is None:
        return []
    findings = []
    for instance in placement.instances:
        in_default = instance.profile in default_set
        for warning in instance.warnings:
            findings.append(
                Finding(where, warning, warning=not (in_default and instance.fit is Fit.WONT_START))
            )
        if instance.fit is Fit.REFUSED:
            options = resolution.alternatives.get(instance.profile, [])
            message = f"{instance.profile} cannot start: {instance.refusal}" + (
                f"; instead: {'; '.join(options)}" if options else ""
            )
            findings.append(Finding(where, message, warning=not in_default))
    if placement.layout is Layout.CANNOT_RUN_TOGETHER and len(default_set) > 1 and swapped:
        findings.append(
            Finding(
                where,
                f"{placement.refusal}: the gateway keeps one awake at a time and switches by sleep/wake",
                warning=True,
            )
        )
    elif placement.layout is Layout.CANNOT_RUN_TOGETHER and len(default_set) > 1:
        options = resolution.alternatives.get("together", [])
        findings.append(
            Finding(where, f"{placement.refusal}" + (f"; instead: {'; '.join(options)}" if options else ""))
        )
    return findings


def default_services(compose: ComposeFile, env: Mapping[str, str]) -> list[str]:
    """The vLLM services `docker compose up` starts: no compose profile, or one named in COMPOSE_PROFILES."""
    active = {name.strip() for name in env.get("COMPOSE_PROFILES", "").split(",") if name.strip()}
    return [
        s.name
        for s in compose.vllm_services()
        if not s.compose_profiles or "*" in active or active & set(s.compose_profiles)
    ]


def check_compose(
    compose: ComposeFile,
    profiles_dir: Path,
    env: Mapping[str, str],
    reported: Collection[str] = (),
    running: dict[str, Profile] | None = None,
) -> list[Finding]:
    """Each vLLM service runs an existing, valid profile on the profile's port; the frontend is told them.

    `reported`: profiles whose errors are already reported; their services and the frontend endpoints
    that name them are not checked again (one mistake, one error). `running` collects the services'
    profiles (service name -> profile) for the placement check."""
    findings: list[Finding] = []
    running = {} if running is None else running
    skipped: set[str] = set()
    where = str(compose.path)
    for service in compose.vllm_services():
        at = f"{where}: services.{service.name}"
        if service.profile_name in reported:
            skipped.add(service.name)
            continue
        path = profiles_dir / f"{service.profile_name}.yaml"
        if not path.is_file():
            available = ", ".join(p.stem for p in profile_paths(profiles_dir))
            findings.append(
                Finding(
                    at, f"profile {service.profile_name!r} does not exist ({path}); use one of {available}"
                )
            )
            continue
        try:
            profile = load_profile(path, env)
        except ProfileError as exc:
            findings.append(Finding(at, f"its profile is invalid: {exc}"))
            continue
        running[service.name] = profile
        port = profile.settings.port
        container_ports = [p.container_port for p in service.published_ports]
        if compose.gateway() is not None:
            if container_ports:
                findings.append(
                    Finding(
                        at,
                        f"publishes port(s) {container_ports}: behind the gateway a model is reached on the "
                        "compose network only (its dev routes, /collective_rpc included, have no key); remove "
                        "`ports:`",
                    )
                )
        elif container_ports != [port]:
            findings.append(
                Finding(
                    at,
                    f"publishes container port(s) {container_ports} but profile {profile.name} listens on {port}",
                )
            )
        if service.healthcheck_port != port:
            findings.append(
                Finding(
                    at,
                    f"healthcheck probes port {service.healthcheck_port}, profile {profile.name} listens on {port}",
                )
            )
    findings += check_run_together(list(running.values()), f"{where} (services that run together)")
    findings += check_exposure(compose)
    gateway = compose.gateway()
    if gateway is not None:
        return findings + check_gateway(compose, gateway, running, skipped)
    for endpoint in compose.frontend_endpoints:
        url = urlsplit(endpoint.base_url)
        at = f"{where}: frontend endpoint {endpoint.name!r}"
        profile = running.get(url.hostname or "")
        if url.hostname in skipped:
            continue
        if profile is None:
            findings.append(Finding(at, f"{endpoint.base_url} names no vLLM service ({', '.join(running)})"))
        elif url.port != profile.settings.port or url.path.rstrip("/") != "/v1":
            findings.append(
                Finding(at, f"{endpoint.base_url} should be http://{url.hostname}:{profile.settings.port}/v1")
            )
        else:
            findings += _page_limits(at, endpoint, profile)
    served_endpoints = {urlsplit(e.base_url).hostname for e in compose.frontend_endpoints}
    for name in running:
        if name not in served_endpoints:
            findings.append(Finding(where, f"the frontend is not told about service {name}"))
    return findings


def _page_limits(at: str, endpoint: Endpoint, profile: Profile) -> list[Finding]:
    """The page's image and video limits for an endpoint agree with the profile that serves it."""
    image_limit, max_image_tokens = endpoint.image_limit, endpoint.max_image_tokens
    if max_image_tokens != (cap := profile.settings.image_max_tokens):
        return [
            Finding(
                at,
                f"max_image_tokens is {max_image_tokens} but profile {profile.name} caps images at "
                f"{cap} tokens (mm-processor-kwargs size.longest_edge / 1024): the page would show wrong "
                "image costs",
            )
        ]
    if image_limit != (served := profile.settings.image_limit):
        return [
            Finding(
                at,
                f"image_limit is {image_limit} but profile {profile.name} takes {served} image(s) "
                "per request (limit-mm-per-prompt): the page would send more than vLLM accepts, or fewer",
            )
        ]
    return _video_findings(endpoint, profile, at)


def _video_findings(endpoint: Endpoint, profile: Profile, at: str) -> list[Finding]:
    """The page's video limit and budget against the profile's: a mismatch sends what vLLM refuses, or shows
    costs the server does not charge."""
    settings = profile.settings
    pairs = [
        (
            "video_limit",
            endpoint.video_limit,
            settings.video_limit,
            "video(s) per request (limit-mm-per-prompt)",
        ),
        (
            "max_video_tokens",
            endpoint.max_video_tokens,
            settings.video_max_tokens,
            "tokens per video (videos_kwargs size.longest_edge / 2048)",
        ),
        (
            "max_video_frames",
            endpoint.max_video_frames,
            settings.video_max_frames,
            "frames per video (media-io-kwargs video.max_frames)",
        ),
    ]
    return [
        Finding(
            at, f"{field} is {page} but profile {profile.name} takes {served} {what}: set {field} to {served}"
        )
        for field, page, served, what in pairs
        if page != served
    ]


def _dev_mode(service: ComposeService) -> bool:
    return service.environment.get("VLLM_SERVER_DEV_MODE", "").strip().lower() in ("1", "true")


def check_exposure(compose: ComposeFile) -> list[Finding]:
    """No Docker socket anywhere; vLLM's dev routes (VLLM_SERVER_DEV_MODE) neither published nor on a network
    the page shares."""
    findings = []
    where = str(compose.path)
    page = next((s for s in compose.services.values() if "FRONTEND_ENDPOINTS" in s.environment), None)
    for service in compose.services.values():
        at = f"{where}: services.{service.name}"
        if service.mounts_docker_socket:
            findings.append(
                Finding(
                    at,
                    "mounts the Docker socket: that is root on the host for whoever controls it; remove it",
                )
            )
        if not _dev_mode(service):
            continue
        if service.published_ports:
            findings.append(
                Finding(
                    at,
                    "VLLM_SERVER_DEV_MODE=1 opens /sleep, /wake_up and /collective_rpc with no key, and the "
                    "service publishes a port: remove `ports:` (the gateway reaches it on the compose network)",
                )
            )
        if (
            page is not None
            and page is not service
            and (shared := set(page.networks) & set(service.networks))
        ):
            findings.append(
                Finding(
                    at,
                    f"VLLM_SERVER_DEV_MODE=1 and the page shares network(s) {', '.join(sorted(shared))} with it: "
                    "put the model services on a network only the gateway joins",
                )
            )
    return findings


def check_gateway(
    compose: ComposeFile, gateway: ComposeService, running: Mapping[str, Profile], skipped: Collection[str]
) -> list[Finding]:
    """The gateway publishes one port, fronts every model service on its profile's port, and the page's
    endpoints are the gateway's URL with the models' served names."""
    where = str(compose.path)
    at = f"{where}: services.{gateway.name}"
    findings = []
    port = int(gateway.environment.get("SERVE_GATEWAY_PORT", "").strip() or DEFAULT_PORT)
    published = [p.container_port for p in gateway.published_ports]
    if published != [port]:
        findings.append(
            Finding(at, f"publishes container port(s) {published}; it should publish {port} alone")
        )
    try:
        fronted = upstreams(gateway.environment.get("SERVE_GATEWAY_UPSTREAMS", ""))
    except GatewayEntrypointError as exc:
        return [*findings, Finding(at, str(exc))]
    by_host = {urlsplit(url).hostname: (profile_name, url) for profile_name, url in fronted}
    for name, profile in running.items():
        expected = f"{profile.name}=http://{name}:{profile.settings.port}/v1"
        if by_host.get(name) is None:
            findings.append(
                Finding(at, f"does not front service {name}: add {expected} to SERVE_GATEWAY_UPSTREAMS")
            )
        elif "=".join(by_host[name]) != expected:
            findings.append(Finding(at, f"fronts {'='.join(by_host[name])}; it should be {expected}"))
    for host, (_, url) in by_host.items():
        if host not in running and host not in skipped:
            findings.append(Finding(at, f"{url} names no vLLM service ({', '.join(running)})"))
    served = {name: profile for profile in running.values() for name in profile.settings.served_names}
    gateway_url = f"http://{gateway.name}:{port}/v1"
    for endpoint in compose.frontend_endpoints:
        at = f"{where}: frontend endpoint {endpoint.name!r}"
        profile = served.get(endpoint.model or "")
        if endpoint.base_url != gateway_url:
            findings.append(Finding(at, f"{endpoint.base_url} should be the gateway, {gateway_url}"))
        elif profile is None:
            if not skipped:
                findings.append(
                    Finding(
                        at,
                        f"model {endpoint.model!r} is none of the gateway's models ({', '.join(served)}): "
                        "name one in `model`",
                    )
                )
        else:
            findings += _page_limits(at, endpoint, profile)
    told = {endpoint.model for endpoint in compose.frontend_endpoints}
    for name, profile in running.items():
        if not told & set(profile.settings.served_names):
            findings.append(
                Finding(
                    where,
                    f"the frontend is not told about service {name} (model {profile.settings.served_name})",
                )
            )
    return findings


def run_check(
    profiles_dir: Path,
    compose_path: Path | None,
    together: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    survey: GpuSurvey | None = None,
) -> CheckReport:
    """Validate every profile in `profiles_dir`, then the compose file, then the named set run together;
    with GPUs (`survey`), place the compose stack and the named set on them.

    The variables are the ones each consumer reads: without a compose file, `.env` in the working directory
    and the environment (as `serve up` does); with one, the `.env` beside it and the environment (as Compose
    does). `together` takes profile names or profile files."""
    settings_dir = compose_path.parent if compose_path else Path.cwd()
    env = (
        compose_env(compose_path, environ)
        if compose_path
        else environ_with_dotenv(Path(DOTENV_FILE), environ)
    )
    errors: list[Finding] = []
    warnings = [Finding(str(path), problem, warning=True) for path, problem in secret_warnings(settings_dir)]
    loaded: dict[str, Profile] = {}
    broken: set[str] = set()
    # An override applies to a whole family: its mistake is one error naming every profile it breaks.
    override_errors: dict[str, list[str]] = {}
    for path in profile_paths(profiles_dir):
        try:
            profile = load_profile(path, env)
        except ProfileError as exc:
            for line in str(exc).splitlines():
                problem = line.split(": ", 1)[-1]
                if "(set by " in problem:
                    override_errors.setdefault(problem, []).append(path.stem)
                else:
                    errors.append(Finding(str(path), problem))
            broken.add(path.stem)
            continue
        loaded[profile.name] = profile
        for finding in check_model_limits(profile):
            (warnings if finding.warning else errors).append(finding)
    errors += [
        Finding(f"profile{'s' if len(names) > 1 else ''} {', '.join(names)}", problem)
        for problem, names in override_errors.items()
    ]
    findings: list[Finding] = []
    gpu_lines: list[str] = []
    gpus_found = survey is not None and survey.found
    if compose_path is not None:
        try:
            compose = load_compose(compose_path, environ)
        except ComposeError as exc:
            errors.append(Finding(str(compose_path), str(exc)))
        else:
            services: dict[str, Profile] = {}
            findings += check_compose(compose, profiles_dir, env, reported=broken, running=services)
            if not compose.spec_checked:
                warnings.append(Finding(str(compose_path), SPEC_SKIPPED, warning=True))
            if gpus_found and services:
                assert survey is not None
                defaults = [
                    services[name].name for name in default_services(compose, env) if name in services
                ]
                resolution = resolve(list(services.values()), survey, load=loader(profiles_dir, env))
                gpu_lines += _placement_lines(resolution, "docker compose")
                where = f"{compose_path} on {', '.join(g.name for g in survey.gpus)}"
                findings += check_placement(
                    resolution, defaults, where, swapped=compose.gateway() is not None
                )
    if together:
        named: list[Profile] = []
        for name in together:
            profile, finding = _named_profile(name, profiles_dir, env, loaded, broken)
            if profile is not None:
                named.append(profile)
            elif finding is not None:
                errors.append(finding)
        findings += check_run_together(named, "profiles run together")
        if gpus_found and named:
            assert survey is not None
            resolution = resolve(named, survey, load=loader(profiles_dir, env))
            gpu_lines += _placement_lines(resolution, " + ".join(p.name for p in named))
            findings += check_placement(resolution, [p.name for p in named], "profiles run together")
    if survey is not None:
        gpu_lines.insert(0, survey.describe() if survey.found else f"GPU: not checked: {survey.describe()}; "
                         "pass --gpu NAME to check the placement for a GPU")  # fmt: skip
    errors += [f for f in findings if not f.warning]
    warnings += [f for f in findings if f.warning]
    return CheckReport(profiles=list(loaded.values()), errors=errors, warnings=warnings, gpu_lines=gpu_lines)


def _placement_lines(resolution: Resolution, label: str) -> list[str]:
    placement = resolution.placement
    if placement is None:
        return []
    return [f"placement ({label}): {placement.summary()}"] + [f"  {i.line()}" for i in placement.instances]


def _named_profile(
    name: str,
    profiles_dir: Path,
    env: Mapping[str, str],
    loaded: Mapping[str, Profile],
    broken: Collection[str],
) -> tuple[Profile | None, Finding | None]:
    """A profile named on the command line: by name (already loaded) or as a file (8b or profiles/8b.yaml)."""
    try:
        path = resolve_profile_path(name, profiles_dir)
    except ProfileError as exc:
        return None, Finding(str(profiles_dir), str(exc))
    if path.resolve().parent == profiles_dir.resolve():
        if path.stem in broken:
            return None, None  # its errors are listed already
        if path.stem in loaded:
            return loaded[path.stem], None
    try:
        return load_profile(path, env), None
    except ProfileError as exc:
        return None, Finding(str(path), str(exc))
