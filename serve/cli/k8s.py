"""`serve k8s`: Helm values for vLLM production-stack (and manifests for the page) from the profiles."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import textwrap
from collections.abc import Sequence
from pathlib import Path

from pydantic import ValidationError
from rich.console import Console

from serve.cli.arguments import count, load
from serve.compose.file import ComposeError, load_compose
from serve.config.profile import Profile, ProfileError
from serve.k8s.capacity import DEFAULT_TOKENS_PER_CHAT, capacity_row
from serve.k8s.chart import CHART_COMMIT, CHART_NAME, CHART_VERSION
from serve.k8s.page_manifests import PageOptions, page_manifests, page_name
from serve.k8s.report import capacity_table, print_next_steps, sizing_table, write_atomically, yaml_documents
from serve.k8s.values import (
    ROUTING_WHY,
    Autoscale,
    K8sOptions,
    K8sValues,
    build_values,
    default_secret,
    validation_message,
)
from serve.k8s.values_model import SecretRef
from serve.planner.gpus import GPUS, find_gpu

NAME = "k8s"
DEFAULT_RELEASE = "qwen3-vl"
DEFAULT_PAGE_FILE = "chat-page.yaml"
DEFAULT_PAGE_STORAGE_GIB = 5
# --X-secret / --no-X: (option stem, what it holds, its key in the Secret, what going without means).
SECRET_OPTIONS = (
    ("api-key", "the API key", "VLLM_API_KEY", "no API key (anyone who reaches the router can use it)"),
    ("hf-token", "the Hugging Face token", "HF_TOKEN", "no Hugging Face token (public checkpoints only)"),
)


def _per_profile(pattern: str, example: str):
    """`[PROFILE=]VALUE` -> (profile or None, VALUE matching `pattern`)."""
    compiled = re.compile(pattern)

    def parse(text: str) -> tuple[str | None, re.Match[str]]:
        profile, _, value = text.rpartition("=")
        match = compiled.fullmatch(value)
        if not match:
            raise argparse.ArgumentTypeError(f"{text!r}: expected [PROFILE=]{example}")
        return profile or None, match

    return parse


def _secret(text: str) -> tuple[str, str | None]:
    """`SECRET[:KEY]` -> (secret name, key or None for the default key)."""
    name, _, key = text.partition(":")
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name) or (
        key and not re.fullmatch(r"[-._A-Za-z0-9]+", key)
    ):
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected SECRET[:KEY], e.g. qwen3-vl-api-key:VLLM_API_KEY"
        )
    return name, key or None


def _label(text: str) -> tuple[str, str]:
    key, _, value = text.partition("=")
    if not key or not value:
        raise argparse.ArgumentTypeError(
            f"{text!r}: expected KEY=VALUE, e.g. nvidia.com/gpu.product=NVIDIA-L4"
        )
    return key, value


def _users(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected chat counts, e.g. 64 or 16,64,256")
    return values


def register(sub: argparse._SubParsersAction) -> None:
    k8s = sub.add_parser(
        NAME,
        help=f"Helm values for vLLM production-stack ({CHART_NAME} {CHART_VERSION}) from the profiles",
        description="One modelSpec per profile, sized for the GPU type of your nodes; secrets by reference only.",
    )
    k8s.add_argument(
        "profiles", nargs="+", help="profile names (8b 4b) or files; each becomes its own Deployment"
    )
    k8s.add_argument("--gpu", required=True, help=f"GPU type of the nodes ({', '.join(GPUS)}); one per pod")
    k8s.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="values file to write (default: standard output)"
    )
    k8s.add_argument(
        "--release", default=DEFAULT_RELEASE, help=f"Helm release name (default {DEFAULT_RELEASE})"
    )
    k8s.add_argument("--namespace", default="default", help="namespace (default: default)")
    k8s.add_argument(
        "--replicas",
        action="append",
        default=[],
        type=_per_profile(r"(\d+)", "N"),
        metavar="[PROFILE=]N",
        help="replicas, for every profile or one (8b=2); default 1",
    )
    k8s.add_argument(
        "--autoscale",
        action="append",
        default=[],
        type=_per_profile(r"(\d+)-(\d+)", "MIN-MAX"),
        metavar="[PROFILE=]MIN-MAX",
        help="KEDA autoscaling on vLLM's queue instead of fixed replicas (e.g. 8b=1-4); needs KEDA and Prometheus",
    )
    for secret, what, key, without in SECRET_OPTIONS:
        group = k8s.add_mutually_exclusive_group()
        group.add_argument(
            f"--{secret}-secret",
            type=_secret,
            metavar="SECRET[:KEY]",
            help=f"Secret[:key] with {what} (default RELEASE-{secret}:{key})",
        )
        group.add_argument(f"--no-{secret}", action="store_true", help=without)
    k8s.add_argument("--storage-class", help="StorageClass of the volumes (default: the cluster's default)")
    k8s.add_argument(
        "--node-selector",
        action="append",
        default=[],
        type=_label,
        metavar="KEY=VALUE",
        help="required node label for the vLLM pods, e.g. nvidia.com/gpu.product=NVIDIA-L4 (repeatable)",
    )
    k8s.add_argument(
        "--runtime-class", default="nvidia", help="runtimeClassName of the vLLM pods ('' for none)"
    )
    k8s.add_argument(
        "--compose-file",
        type=Path,
        default=Path("docker-compose.yml"),
        help="where the image tags are pinned",
    )
    k8s.add_argument(
        "--frontend",
        nargs="?",
        const=DEFAULT_PAGE_FILE,
        type=Path,
        metavar="FILE",
        help=f"also write the chat page's manifests (default file {DEFAULT_PAGE_FILE})",
    )
    k8s.add_argument(
        "--frontend-image", help="the page's image in your registry (default: compose's image name)"
    )
    k8s.add_argument(
        "--frontend-storage", type=count(1), default=DEFAULT_PAGE_STORAGE_GIB, help="chat history volume, GiB"
    )
    k8s.add_argument(
        "--users",
        type=_users,
        metavar="N[,N...]",
        help="also print the replicas needed for N concurrent chats (e.g. 16,64,256)",
    )
    k8s.add_argument(
        "--tokens-per-chat",
        type=count(256),
        default=DEFAULT_TOKENS_PER_CHAT,
        help=f"context one chat holds, for --users (default {DEFAULT_TOKENS_PER_CHAT:,})",
    )


def _by_profile(
    pairs: Sequence[tuple[str | None, re.Match[str]]], profiles: Sequence[Profile], option: str
) -> dict[str, re.Match[str]]:
    names = [profile.name for profile in profiles]
    chosen: dict[str, re.Match[str]] = {}
    for profile, match in pairs:
        if profile is not None and profile not in names:
            raise ProfileError(
                f"{option} {profile}=...: {profile} is not one of the profiles given ({', '.join(names)})"
            )
        for name in names if profile is None else [profile]:
            chosen[name] = match
    return chosen


def _secret_ref(
    given: tuple[str, str | None] | None, disabled: bool, release: str, key: str
) -> SecretRef | None:
    if disabled:
        return None
    if given is None:
        return default_secret(release, key)
    name, given_key = given
    return SecretRef(secretName=name, secretKey=given_key or key)


def _compose_images(path: Path) -> tuple[str, str | None]:
    """The vLLM image tag compose pins and the page's image name."""
    try:
        compose = load_compose(path)
    except ComposeError as error:
        raise ProfileError(f"{error} (the vLLM image tag is read from it; pass --compose-file)") from None
    images = sorted({s.image for s in compose.vllm_services() if s.image})
    if len(images) != 1 or ":" not in images[0]:
        raise ProfileError(
            f"{path}: expected one pinned vllm/vllm-openai image, found {', '.join(images) or 'none'}"
        )
    # The page is the service told FRONTEND_ENDPOINTS (the gateway runs the vLLM image but serves no model).
    page = next(
        (s.image for s in compose.services.values() if s.image and "FRONTEND_ENDPOINTS" in s.environment),
        None,
    )
    return images[0].rsplit(":", 1)[1], page


def _shown(path: Path) -> str:
    """A path relative to the working directory when it is under it (the values file is shared)."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _header(argv: Sequence[str], profiles: Sequence[Profile], result: K8sValues) -> list[str]:
    sources = ", ".join(_shown(profile.path) for profile in profiles)
    return [
        f"Helm values for {CHART_NAME} {CHART_VERSION} (production-stack {CHART_COMMIT[:7]}), generated by",
        f"  python -m serve {shlex.join(argv)}",
        *_wrap(f"from {sources}. Regenerate rather than edit; add your own settings in a second -f file."),
        "",
        *_wrap(ROUTING_WHY),
        *(
            ["", *(line for warning in result.warnings for line in _wrap(f"Note: {warning}"))]
            if result.warnings
            else []
        ),
    ]


def _wrap(text: str) -> list[str]:
    return textwrap.wrap(text, width=106, break_on_hyphens=False, break_long_words=False)


def run(args: argparse.Namespace, out: Console) -> int:
    profiles = [load(name, args.profiles_dir) for name in args.profiles]
    gpu = find_gpu(args.gpu)
    # Values on standard output go to a pipe; everything for people goes to stderr then.
    guide = out if args.output else Console(stderr=True, soft_wrap=True)
    replicas = {
        name: int(m.group(1)) for name, m in _by_profile(args.replicas, profiles, "--replicas").items()
    }
    try:
        autoscale = {
            name: Autoscale(min_replicas=int(m.group(1)), max_replicas=int(m.group(2)))
            for name, m in _by_profile(args.autoscale, profiles, "--autoscale").items()
        }
        options = K8sOptions(
            release=args.release,
            namespace=args.namespace,
            gpu=gpu,
            replicas=replicas,
            autoscale=autoscale,
            api_key_secret=_secret_ref(args.api_key_secret, args.no_api_key, args.release, "VLLM_API_KEY"),
            hf_token_secret=_secret_ref(args.hf_token_secret, args.no_hf_token, args.release, "HF_TOKEN"),
            storage_class=args.storage_class,
            node_selector=dict(args.node_selector),
            runtime_class=args.runtime_class,
        )
        image_tag, compose_page_image = _compose_images(args.compose_file)
        result = build_values(profiles, image_tag, options)
    except ValidationError as error:
        raise ProfileError(validation_message(error)) from None
    header = _header(args.argv, profiles, result)
    page_image = args.frontend_image or compose_page_image or "qwen3-vl-frontend:local"
    files: list[tuple[Path, str]] = []
    if args.frontend:
        page = PageOptions(
            release=args.release,
            namespace=args.namespace,
            image=page_image,
            storage_gib=args.frontend_storage,
            storage_class=args.storage_class,
            api_key_secret=options.api_key_secret,
        )
        files.append((args.frontend, yaml_documents(page_manifests(profiles, page), header[:2])))
    text = yaml_documents([result.values.to_values()], header)
    if args.output:
        files.insert(0, (args.output, text))
    for path, content in files:
        try:
            write_atomically(path, content)
        except OSError as error:
            raise ProfileError(
                f"cannot write {path}: {error.strerror or error}; check the folder exists"
            ) from None
    if not args.output:
        sys.stdout.write(text)
        sys.stdout.flush()
    _guide(guide, args, options, result, page_image, profiles)
    return 0


def _guide(
    guide: Console,
    args: argparse.Namespace,
    options: K8sOptions,
    result: K8sValues,
    page_image: str,
    profiles: Sequence[Profile],
) -> None:
    target = str(args.output) if args.output else "standard output"
    guide.print(
        f"Helm values for {CHART_NAME} {CHART_VERSION} written to {target}.", markup=False, highlight=False
    )
    guide.print(sizing_table(result))
    for spec in result.values.serving_engine_spec.model_spec:
        guide.print(f"{spec.name} pods run: {shlex.join(spec.command())}", markup=False, highlight=False)
    for warning in result.warnings:
        guide.print(f"warning: {warning}", markup=False, highlight=False)
    if options.api_key_secret is None:
        guide.print(
            "warning: no API key: anyone who can reach the router's Service can use the models "
            "(it is a ClusterIP Service: keep it that way, or put an authenticating proxy in front)",
            markup=False,
            highlight=False,
        )
    if not options.node_selector:
        guide.print(
            f"Sized for {options.gpu.label}: pods may land on any GPU node; pin them with --node-selector "
            "(e.g. nvidia.com/gpu.product=<your nodes' product label>).",
            markup=False,
            highlight=False,
        )
    guide.print(ROUTING_WHY, markup=False, highlight=False)
    if args.frontend:
        guide.print(f"Chat page manifests written to {args.frontend}.", markup=False, highlight=False)
    if args.users:
        rows = [
            capacity_row(profile, options.gpu.key, args.users, args.tokens_per_chat) for profile in profiles
        ]
        guide.print(capacity_table(rows, args.users, args.tokens_per_chat))
    print_next_steps(
        guide,
        release=options.release,
        namespace=options.namespace,
        values_file=str(args.output) if args.output else "values.yaml",
        api_key=options.api_key_secret,
        hf_token=options.hf_token_secret,
        page_file=str(args.frontend) if args.frontend else None,
        page_image=page_image,
        page_service=page_name(options.release),
    )
