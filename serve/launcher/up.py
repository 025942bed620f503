"""`serve up`: start vLLM with a profile on bare metal, show its progress, report ready, stop it cleanly."""

from __future__ import annotations

import errno
import os
import shlex
import signal
import socket
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

import httpx
from rich.console import Console
from rich.markup import escape

from serve.config.overrides import variable_prefix
from serve.config.profile import Profile
from serve.config.secrets import Secret, secrets_environment
from serve.launcher.addresses import http_root, is_ipv6, is_loopback
from serve.launcher.failures import diagnose, error_lines
from serve.launcher.readiness import is_ready
from serve.launcher.vllm_process import Phase, VllmProcess, vllm_command, vllm_environment
from serve.planner.placement import InstancePlacement

# Readiness is noticed within this long of /health turning 200; a refused connect is cheap.
POLL_SECONDS = 0.1


@dataclass(frozen=True)
class UpOptions:
    host: str = "127.0.0.1"
    port: int | None = None
    log_file: Path | None = None
    verbose: bool = False
    ready_timeout: float = 3600.0
    extra_args: list[str] = field(default_factory=list)
    # VLLM_API_KEY / HF_TOKEN found in the environment, .env or secrets.env (serve.config.secrets).
    secrets: dict[str, Secret] = field(default_factory=dict)
    # Where and how big: None on a machine without an NVIDIA GPU (the profile's values go to vLLM as they are).
    placed: InstancePlacement | None = None

    def environment(self) -> dict[str, str]:
        """What vLLM gets on top of this process's environment: the secrets found, the GPU it was placed on."""
        return {**secrets_environment(self.secrets), **(self.placed.environment() if self.placed else {})}


@dataclass(frozen=True)
class ApiKey:
    """The key vLLM will require, and where it was set (for messages: never the key itself)."""

    value: str
    source: str


class StopRequested(Exception):
    """Ctrl+C or SIGTERM arrived."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise StopRequested(signal.Signals(signum).name)


def bind_problem(host: str, port: int) -> str | None:
    """Why vLLM could not listen on host:port (a test bind, released at once), or None when it can."""
    with closing(socket.socket(socket.AF_INET6 if is_ipv6(host) else socket.AF_INET)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {port} on {host} is in use: stop the server holding it or pass --port N"
            return (
                f"cannot listen on {host} port {port}: {exc.strerror or exc}; --host takes an address of "
                "this machine (127.0.0.1, ::1, 0.0.0.0, ::)"
            )
    return None


def api_key_for(profile: Profile, extra_args: list[str], secrets: dict[str, Secret]) -> ApiKey | None:
    """The key vLLM will require: --api-key after --, in the profile, else VLLM_API_KEY (environment, .env,
    secrets.env). vLLM itself takes --api-key over VLLM_API_KEY, and so does this."""
    if "--api-key" in extra_args[:-1]:
        return ApiKey(extra_args[extra_args.index("--api-key") + 1], "--api-key")
    if from_profile := (profile.settings.model_extra or {}).get("api-key"):
        return ApiKey(str(from_profile), f"api-key in {profile.path}")
    if secret := secrets.get("VLLM_API_KEY"):
        return ApiKey(secret.value.get_secret_value(), f"VLLM_API_KEY from {secret.source}")
    return None


def key_status(api_key: ApiKey | None) -> str:
    if api_key is None:
        return (
            "API key: none (anyone who can reach the port can use the model; set VLLM_API_KEY in secrets.env)"
        )
    return f"API key: required ({api_key.source})"


def openai_snippet(base_url: str, served_name: str, has_key: bool) -> str:
    key = 'os.environ["VLLM_API_KEY"]' if has_key else '"EMPTY"'
    return f"""import base64, os
from openai import OpenAI

client = OpenAI(base_url="{base_url}", api_key={key})
image = base64.b64encode(open("photo.jpg", "rb").read()).decode()
reply = client.chat.completions.create(
    model="{served_name}",
    messages=[{{"role": "user", "content": [
        {{"type": "image_url", "image_url": {{"url": f"data:image/jpeg;base64,{{image}}"}}}},
        {{"type": "text", "text": "What is in this picture?"}},
    ]}}],
)
print(reply.choices[0].message.content)"""


def command_line(profile: Profile, options: UpOptions) -> str:
    """What `serve up` would run, as one shell line: the variables it adds to the environment (secrets shown
    by name only), then vLLM."""
    secret_names = set(options.secrets)
    final = vllm_environment({**os.environ, **options.environment()})
    shown = [
        f"{name}=${name}" if name in secret_names else f"{name}={value}"
        for name, value in final.items()
        if os.environ.get(name) != value
    ]
    port = options.port or profile.settings.port
    command = vllm_command(profile, options.host, port, options.extra_args, options.placed)
    return " ".join([*shown, shlex.join(command)]) if shown else shlex.join(command)


def _say(console: Console, text: str) -> None:
    """Plain text: paths and vLLM output may contain [brackets] that rich would read as markup."""
    console.print(text, highlight=False, markup=False)


class _Progress:
    """A live status line on a terminal; one line per phase otherwise (logs, CI), none skipped."""

    def __init__(self, console: Console, label: str) -> None:
        self.console = console
        self.label = label
        self.started = time.monotonic()
        self._shown = 0
        self._status = console.status(f"{label}: starting") if console.is_terminal else None
        if self._status:
            self._status.start()

    def update(self, phases: list[Phase]) -> None:
        elapsed = f"({time.monotonic() - self.started:.0f} s)"
        if self._status:
            self._status.update(f"{self.label}: {phases[-1].value} {elapsed}")
        else:
            for phase in phases[self._shown :]:
                _say(self.console, f"[serve] {self.label}: {phase.value} {elapsed}")
        self._shown = len(phases)

    def close(self) -> None:
        if self._status:
            self._status.stop()


def _report_failure(console: Console, profile: Profile, proc: VllmProcess, headline: str) -> None:
    lines = proc.log_lines()
    console.print(f"[bold red]error:[/] {escape(headline)}", highlight=False)
    console.print("vLLM said:", highlight=False)
    for line in error_lines(lines):
        console.print(f"  {line}", highlight=False, markup=False)
    family = variable_prefix(profile.family).rstrip("_")
    for known in diagnose(lines):
        advice = known.advice.format(family=family, profile=profile.name, path=profile.path)
        console.print(f"[bold]what to change:[/] {escape(advice)}", highlight=False)
    _say(console, f"full log: {proc.log_path}")


def run_up(profile: Profile, options: UpOptions, console: Console, out: Console) -> int:
    """Run until vLLM dies (exit 1) or we are told to stop (exit 0 after a clean shutdown)."""
    port = options.port or profile.settings.port
    served_name = profile.settings.served_name
    api_key = api_key_for(profile, options.extra_args, options.secrets)
    if not is_loopback(options.host) and api_key is None:
        console.print(
            f"[bold yellow]warning:[/] binding {escape(options.host)} without an API key: anyone who can reach "
            "this machine can use the model. Set VLLM_API_KEY in secrets.env (clients then send it as their "
            "api_key).",
            highlight=False,
        )
    if problem := bind_problem(options.host, port):
        console.print(f"[bold red]error:[/] {escape(problem)}", highlight=False)
        return 1
    log_path = options.log_file or Path(tempfile.mkdtemp(prefix="serve-up-")) / f"vllm-{profile.name}.log"
    proc = VllmProcess(
        vllm_command(profile, options.host, port, options.extra_args, options.placed),
        log_path,
        echo=sys.stderr if options.verbose else None,
        extra_env=options.environment(),
    )
    root_url = http_root(options.host, port)
    key = api_key.value if api_key else None
    previous = {sig: signal.signal(sig, _raise_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    progress = _Progress(console, f"{profile.name} ({served_name})")
    try:
        _say(console, f"[serve] starting vLLM for {profile.path} on {root_url}, log: {log_path}")
        proc.start()
        with httpx.Client() as client:
            while not is_ready(client, root_url, served_name, key):
                if proc.returncode() is not None:
                    proc.wait_for_output()
                    progress.close()
                    _report_failure(
                        console, profile, proc, f"vLLM exited during start-up (code {proc.returncode()})"
                    )
                    return 1
                if time.monotonic() - progress.started > options.ready_timeout:
                    progress.close()
                    _report_failure(
                        console, profile, proc, f"vLLM was not ready after {options.ready_timeout:.0f} s"
                    )
                    return 1
                progress.update(proc.phases_seen())
                time.sleep(POLL_SECONDS)
        progress.update([*proc.phases_seen(), Phase.READY])
        progress.close()
        base_url = f"{root_url}/v1"
        out.print(
            f"{served_name} is ready at {base_url} (in {time.monotonic() - progress.started:.1f} s)",
            highlight=False,
        )
        out.print(key_status(api_key), highlight=False, markup=False)
        out.print(
            f"\nOpenAI SDK:\n{openai_snippet(base_url, served_name, api_key is not None)}\n", highlight=False
        )
        out.print("Press Ctrl+C to stop.", highlight=False)
        while (code := proc.returncode()) is None:
            time.sleep(POLL_SECONDS)
        proc.wait_for_output()
        _report_failure(console, profile, proc, f"vLLM exited unexpectedly after it was ready (code {code})")
        return 1
    except StopRequested as stop:
        progress.close()
        _say(console, f"[serve] {stop}: stopping vLLM")
        code = proc.stop()
        _say(console, f"[serve] vLLM stopped (code {code})")
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        proc.stop()
