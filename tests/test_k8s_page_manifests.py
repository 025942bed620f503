"""`serve k8s --frontend`: the chat page's manifests, validated against Kubernetes' own OpenAPI schemas
(kubernetes-validate bundles them; no cluster here) and read back by the page's real settings loader."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from frontend.settings import load_settings
from harness.serve_up import REPO_ROOT
from serve.cli import main
from serve.config.profile import load_profile, resolve_profile_path
from serve.k8s.page_manifests import PageOptions, page_manifests
from serve.k8s.values import default_secret

KUBERNETES_VERSION = "1.33"


def manifests(**changes: Any) -> list[dict[str, Any]]:
    profiles = [load_profile(resolve_profile_path(name, REPO_ROOT / "profiles"), {}) for name in ("8b", "4b")]
    options = {
        "release": "qwen3-vl",
        "namespace": "vision",
        "image": "registry.example/qwen3-vl-chat:1",
        "storage_gib": 5,
        "api_key_secret": default_secret("qwen3-vl", "VLLM_API_KEY"),
        **changes,
    }
    return page_manifests(profiles, PageOptions(**options))


def by_kind(documents: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {document["kind"]: document for document in documents}


@pytest.mark.parametrize("changes", [{}, {"api_key_secret": None, "storage_class": "fast-ssd"}])
def test_the_manifests_are_valid_kubernetes_objects(changes: dict[str, Any]) -> None:
    documents = manifests(**changes)
    assert [d["kind"] for d in documents] == ["PersistentVolumeClaim", "Deployment", "Service"]
    for document in documents:
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_a_broken_manifest_would_be_caught() -> None:
    """The validator is strict: an unknown field (a typo) fails, so the test above means something."""
    deployment = by_kind(manifests())["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_the_page_talks_to_the_router_one_entry_per_model(monkeypatch: pytest.MonkeyPatch) -> None:
    container = by_kind(manifests())["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    env = {item["name"]: item for item in container["env"]}
    monkeypatch.setenv("FRONTEND_ENDPOINTS", env["FRONTEND_ENDPOINTS"]["value"])
    endpoints = load_settings().endpoints  # what the page itself makes of the variable
    router = "http://qwen3-vl-router-service.vision.svc:80/v1"
    assert [(e.name, e.base_url, e.model, e.session_header) for e in endpoints] == [
        ("qwen3-vl-8b", router, "qwen3-vl-8b", "x-session-id"),
        ("qwen3-vl-4b", router, "qwen3-vl-4b", "x-session-id"),
    ]
    assert [(e.image_limit, e.max_image_tokens) for e in endpoints] == [(4, 1280), (4, 1280)]
    assert env["FRONTEND_API_KEY"]["valueFrom"] == {
        "secretKeyRef": {"name": "qwen3-vl-api-key", "key": "VLLM_API_KEY"}
    }
    assert env["FRONTEND_DATA_DIR"]["value"] == "/data"


def test_the_page_runs_locked_down_with_its_chats_on_a_volume() -> None:
    objects = by_kind(manifests())
    pod = objects["Deployment"]["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001  # frontend/Dockerfile's user
    assert pod["automountServiceAccountToken"] is False
    assert container["securityContext"] == {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }
    assert set(container["resources"]) == {"requests", "limits"}
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/_stcore/health", "port": "http"}
    claim = objects["PersistentVolumeClaim"]
    assert {"persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}, "name": "chats"} in pod[
        "volumes"
    ]
    assert objects["Deployment"]["spec"]["strategy"] == {"type": "Recreate"}  # one SQLite file, one pod
    assert objects["Service"]["spec"]["type"] == "ClusterIP"  # not exposed: port-forward or your own ingress
    assert "nodePort" not in json.dumps(objects["Service"])


def test_the_command_writes_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO_ROOT)
    page = tmp_path / "page.yaml"
    assert (
        main(["k8s", "8b", "4b", "--gpu", "h100", "-o", str(tmp_path / "v.yaml"), "--frontend", str(page)])
        == 0
    )
    assert "&id" not in page.read_text()  # plain YAML: no anchors where the labels repeat
    documents = [d for d in yaml.safe_load_all(page.read_text()) if d]
    assert [d["kind"] for d in documents] == ["PersistentVolumeClaim", "Deployment", "Service"]
    image = documents[1]["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == "qwen3-vl-frontend:local"  # compose's name for the page's image, unless --frontend-image
    printed = capsys.readouterr().out
    assert f"kubectl --namespace default apply -f {page}" in printed
    assert "kubectl --namespace default port-forward svc/qwen3-vl-chat 8501:8501" in printed
