"""`serve gateway`: one OpenAI URL for every model; routes by `model` and swaps models when not all fit."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from rich.console import Console

from serve.cli.arguments import (
    add_gpu_options,
    bind_address,
    count,
    endpoint,
    gpu_survey,
    load,
    port_number,
    positive_float,
    settings_environ,
)
from serve.config.profile import ProfileError
from serve.config.secrets import find_secrets, secrets_environment
from serve.gateway.config import DEFAULT_PORT, GatewaySettings, Policy
from serve.gateway.swap import SwapMode
from serve.launcher.addresses import http_root, is_loopback
from serve.launcher.up import bind_problem
from serve.planner.resolve import loader, resolve

NAME = "gateway"


def seconds(text: str) -> float:
    """0 or more seconds."""
    return 0.0 if text.strip() in ("0", "0.0") else positive_float(text)


UPSTREAM_KEY_VARIABLE = "SERVE_UPSTREAM_API_KEY"


def register(sub: argparse._SubParsersAction) -> None:
    gateway = sub.add_parser(
        NAME,
        help="one OpenAI URL for every model: routes by model, swaps models that do not fit together",
        description="Starts the profiles' vLLM instances itself, each on a Unix socket in a private folder with "
        "a key of its own, and serves one OpenAI-compatible URL in front of them (/v1/chat/completions, "
        "/v1/completions, /v1/models with each model's state, /health, /metrics). When a request names a "
        "model that is not awake, it waits in a queue while the gateway puts another to sleep (GPU sleep "
        "mode) or stops it, and brings the asked one up.\n"
        "With --upstream the instances run elsewhere (compose) and are swapped by sleep/wake over HTTP.\n"
        "VLLM_API_KEY (environment, .env, secrets.env) is the key clients send to the gateway.",
        epilog="Examples:\n"
        "  serve gateway 8b 4b                 both behind http://127.0.0.1:8000/v1\n"
        "  serve gateway 8b 4b --max-awake 1   one at a time, swapped on demand\n"
        "  serve gateway 8b 4b --upstream 8b=http://vllm-8b:8000/v1 \\\n"
        "    --upstream 4b=http://vllm-4b:8000/v1\n"
        "Anything after -- goes to every vLLM instance.",
    )
    gateway.add_argument("profiles", nargs="+", metavar="PROFILE", help="profile names (8b 4b) or files")
    gateway.add_argument(
        "--host", type=bind_address, default="127.0.0.1", help="address to bind (default 127.0.0.1)"
    )
    gateway.add_argument(
        "--port", type=port_number, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})"
    )
    gateway.add_argument(
        "--max-awake",
        type=count(1),
        default=None,
        metavar="N",
        help="models awake at once (default: what the placement allows; all of them without a GPU)",
    )
    gateway.add_argument(
        "--swap",
        type=SwapMode,
        choices=list(SwapMode),
        default=SwapMode.AUTO,
        help="how a model is swapped out: sleep (vLLM sleep mode, seconds), restart (stop/start, a full "
        "start-up), auto (sleep where supported and host RAM holds the sleeping weights; default)",
    )
    gateway.add_argument(
        "--upstream",
        type=endpoint,
        action="append",
        default=[],
        metavar="PROFILE=URL",
        help="attach to a running instance instead of starting it (one per profile; their key: "
        f"${UPSTREAM_KEY_VARIABLE}, else VLLM_API_KEY)",
    )
    gateway.add_argument(
        "--min-awake",
        type=seconds,
        default=Policy().min_awake_s,
        metavar="S",
        help="a model in use stays awake at least S seconds before it is swapped out (default %(default)g)",
    )
    gateway.add_argument(
        "--idle-ttl", type=positive_float, default=None, metavar="S", help="put a model away after S s unused"
    )
    gateway.add_argument(
        "--drain-timeout",
        type=positive_float,
        default=Policy().drain_timeout_s,
        metavar="S",
        help="longest wait for requests in flight before a swap (default %(default)g)",
    )
    gateway.add_argument(
        "--queue-limit",
        type=count(1),
        default=Policy().queue_limit,
        metavar="N",
        help="requests that may wait for a swap; more get 503 + Retry-After (default %(default)s)",
    )
    gateway.add_argument(
        "--max-body-mb",
        type=positive_float,
        default=GatewaySettings().max_body_bytes / 2**20,
        metavar="MB",
        help="largest request body (default %(default)g MiB)",
    )
    gateway.add_argument(
        "--ready-timeout",
        type=positive_float,
        default=Policy().ready_timeout_s,
        metavar="S",
        help="seconds to wait for an instance to be ready (default %(default)g: first downloads are slow)",
    )
    gateway.add_argument(
        "--log-dir", type=Path, default=None, help="where vLLM logs go (default: a private temp folder)"
    )
    add_gpu_options(gateway)


def run(args: argparse.Namespace, out: Console) -> int:
    # Here, not at the top: uvicorn and starlette load only for the command that serves.
    from serve.gateway.assemble import (
        Supervision,
        attached_instances,
        build_gateway,
        default_max_awake,
        pick_mode,
        private_dir,
        serve,
        supervised_instances,
    )

    environ = settings_environ()
    profiles = [load(name, args.profiles_dir, environ) for name in args.profiles]
    names = [p.settings.served_name for p in profiles]
    if len(set(names)) != len(names):
        raise ProfileError(f"two profiles serve the same name ({', '.join(names)}): give each model its own")
    upstreams = dict(args.upstream)
    if upstreams and set(upstreams) != {p.name for p in profiles}:
        raise ProfileError(
            f"--upstream names {', '.join(sorted(upstreams))} but the profiles are "
            f"{', '.join(p.name for p in profiles)}: give one PROFILE=URL per profile"
        )
    resolution = resolve(
        profiles, gpu_survey(args, environ), load=loader(args.profiles_dir, environ), unknown_models_pass=True
    )
    placement = resolution.placement
    max_awake = args.max_awake or default_max_awake(placement, len(profiles))
    try:
        choice = pick_mode(args.swap, profiles, placement, max_awake, supervised=not upstreams)
    except ValueError as exc:
        raise ProfileError(str(exc)) from None
    policy = Policy(
        max_awake=max_awake,
        queue_limit=args.queue_limit,
        drain_timeout_s=args.drain_timeout,
        min_awake_s=args.min_awake,
        idle_ttl_s=args.idle_ttl,
        ready_timeout_s=args.ready_timeout,
    )
    secrets = find_secrets(Path.cwd())
    key = secrets.get("VLLM_API_KEY")
    settings = GatewaySettings(
        host=args.host,
        port=args.port,
        api_key=key.value if key else None,
        max_body_bytes=int(args.max_body_mb * 2**20),
    )
    console = Console(stderr=True, soft_wrap=True)
    logging.basicConfig(level=logging.INFO, format="[gateway] %(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per upstream request otherwise
    if problem := bind_problem(args.host, args.port):
        console.print(f"[bold red]error:[/] {problem}", highlight=False)
        return 1
    if key is None and not is_loopback(args.host):
        console.print(
            f"[bold yellow]warning:[/] binding {args.host} without an API key: anyone who can reach this machine "
            "can use the models. Set VLLM_API_KEY in secrets.env.",
            highlight=False,
        )
    if upstreams:
        upstream_key = environ.get(UPSTREAM_KEY_VARIABLE) or (key.value.get_secret_value() if key else None)
        instances = attached_instances(profiles, placement, upstreams, upstream_key, policy.ready_timeout_s)
    else:
        others = {
            name: value for name, value in secrets_environment(secrets).items() if name != "VLLM_API_KEY"
        }
        how = Supervision(args.log_dir, args.vllm_args, others, gpu=placement is not None)
        socket_dir = private_dir()
        instances = supervised_instances(
            profiles, placement, choice.mode, how, policy.ready_timeout_s, socket_dir
        )
        out.print(
            f"instances on Unix sockets in {socket_dir} (mode 0700), vLLM logs in {args.log_dir or socket_dir}",
            highlight=False,
            markup=False,
        )
    _, app = build_gateway(settings, instances, choice.mode, policy)
    root = http_root(args.host, args.port)
    out.print(
        f"gateway at {root}/v1 for {', '.join(names)}; up to {max_awake} awake at once, swap by {choice.mode} "
        f"({choice.why}); API key: {'required (' + key.source + ')' if key else 'none'}",
        highlight=False,
        markup=False,
    )
    serve(settings, app)
    return 0
