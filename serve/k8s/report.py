"""What `serve k8s` prints and writes: YAML documents (whole or not at all), the sizing table, the next steps."""

from __future__ import annotations

import os
import shlex
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from serve.k8s.capacity import CapacityRow
from serve.k8s.chart import CHART_NAME, CHART_VERSION, ROUTER_SERVICE_PORT, helm_commands, router_service
from serve.k8s.values import K8sValues
from serve.k8s.values_model import SecretRef


class _PlainDumper(yaml.SafeDumper):
    """No `&id001` anchors where one mapping appears twice (the page's labels): manifests stay plain."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def yaml_documents(documents: Sequence[dict[str, Any]], header: Sequence[str]) -> str:
    """Comment lines, then the documents separated by `---`, keys in the order they were built."""
    comments = "".join(f"# {line}\n" if line else "#\n" for line in header)
    body = "---\n".join(
        yaml.dump(doc, Dumper=_PlainDumper, sort_keys=False, width=110, allow_unicode=True)
        for doc in documents
    )
    return comments + body


def write_atomically(path: Path, text: str) -> None:
    """The whole file or, if anything fails, the old one untouched: written beside it, then renamed."""
    path = path.expanduser()
    handle, temporary = tempfile.mkstemp(dir=path.parent or Path("."), prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def sizing_table(result: K8sValues) -> Table:
    specs = result.values.serving_engine_spec.model_spec
    table = Table(title=f"One pod per replica, each with its GPU(s) to itself ({result.sizings[0].gpu})")
    table.add_column("")
    for name in result.served_names:
        table.add_column(name, justify="right")
    rows: list[tuple[str, list[str]]] = [
        ("profile", [s.profile for s in result.sizings]),
        (
            "replicas",
            [
                f"KEDA {m.keda.min_replica_count}-{m.keda.max_replica_count}"
                if m.keda
                else str(m.replica_count)
                for m in specs
            ],
        ),
        ("GPUs per pod", [str(s.gpus_per_pod) for s in result.sizings]),
        ("GPU share", [f"{s.gpu_memory_utilization:g} ({s.share_source})" for s in result.sizings]),
        ("context (max-model-len)", [f"{s.max_model_len:,}" for s in result.sizings]),
        (
            "KV cache per replica",
            [f"{s.kv_tokens:,} tokens = {s.concurrent_at_max_len:.1f} full contexts" for s in result.sizings],
        ),
        ("CPU request", [str(m.request_cpu) for m in specs]),
        ("memory request / limit", [f"{m.request_memory} / {m.limit_memory}" for m in specs]),
        (
            "weights volume",
            [
                f"{m.pvc_storage} ({s.checkpoint_gib:.1f} GiB checkpoint)"
                for m, s in zip(specs, result.sizings, strict=True)
            ],
        ),
    ]
    for label, cells in rows:
        table.add_row(label, *cells)
    return table


def capacity_table(rows: Sequence[CapacityRow], users: Sequence[int], tokens_per_chat: int) -> Table:
    table = Table(title=f"Replicas for N concurrent chats of ~{tokens_per_chat:,} tokens ({rows[0].gpu})")
    table.add_column("profile")
    table.add_column("KV tokens / replica", justify="right")
    table.add_column("chats / replica", justify="right")
    for n in users:
        table.add_column(f"{n:,} chats", justify="right")
    for row in rows:
        cells = [str(r) if r is not None else "does not fit" for r in row.replicas.values()]
        table.add_row(row.profile, f"{row.kv_tokens:,}", str(row.chats_per_replica), *cells)
    return table


def secret_commands(namespace: str, api_key: SecretRef | None, hf_token: SecretRef | None) -> list[str]:
    """Secrets created from stdin, so no key lands in the shell history or the process list."""
    commands = []
    if api_key:
        commands.append(
            "openssl rand -hex 32 | tr -d '\\n' | " + shlex.join(_create_secret(namespace, api_key))
        )
    if hf_token:
        commands.append('printf %s "$HF_TOKEN" | ' + shlex.join(_create_secret(namespace, hf_token)))
    return commands


def _create_secret(namespace: str, ref: SecretRef) -> list[str]:
    return [
        "kubectl", "--namespace", namespace, "create", "secret", "generic", ref.secret_name,
        f"--from-file={ref.secret_key}=/dev/stdin",
    ]  # fmt: skip


def print_next_steps(
    out: Console,
    *,
    release: str,
    namespace: str,
    values_file: str,
    api_key: SecretRef | None,
    hf_token: SecretRef | None,
    page_file: str | None,
    page_image: str | None,
    page_service: str | None,
) -> None:
    lines: list[str] = []
    if namespace != "default":
        lines.append(shlex.join(["kubectl", "create", "namespace", namespace]))
    lines += secret_commands(namespace, api_key, hf_token)
    lines += helm_commands(release, namespace, values_file)
    if page_file and page_image and page_service:
        image = shlex.quote(page_image)
        lines += [
            f"docker build -t {image} frontend && docker push {image}"
            if "/" in page_image  # a repository path; else a local name
            else f"docker build -t {image} frontend && kind load docker-image {image}"
            "   # or minikube image load; for a registry: --frontend-image REGISTRY/qwen3-vl-chat:TAG",
            shlex.join(["kubectl", "--namespace", namespace, "apply", "-f", page_file]),
            shlex.join(
                ["kubectl", "--namespace", namespace, "port-forward", f"svc/{page_service}", "8501:8501"]
            )
            + "   # the page at http://127.0.0.1:8501",
        ]
    service = router_service(release)
    lines.append(
        shlex.join(
            [
                "kubectl",
                "--namespace",
                namespace,
                "port-forward",
                f"svc/{service}",
                f"8080:{ROUTER_SERVICE_PORT}",
            ]
        )
        + "   # the OpenAI API at http://127.0.0.1:8080/v1"
    )
    if api_key:
        lines.append(
            f"kubectl --namespace {shlex.quote(namespace)} get secret {shlex.quote(api_key.secret_name)} "
            f"-o jsonpath='{{.data.{api_key.secret_key}}}' | base64 -d   # the API key, for your clients"
        )
    out.print(
        f"Next steps (chart {CHART_NAME} {CHART_VERSION}, the version these values were checked against):"
    )
    for line in lines:
        out.print(f"  {line}", markup=False, highlight=False, soft_wrap=True)
