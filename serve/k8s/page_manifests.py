"""Plain Kubernetes manifests for the chat page next to a vllm-stack release: Deployment, Service, PVC.

The page talks to the router's Service, one entry per model at the same URL (each names its `model`), and
sends the chat id in the session header the router hashes. The image is frontend/Dockerfile's, built and
pushed by the user (there is no published image). Defaults are the safe ones: ClusterIP only (reach it with
`kubectl port-forward`, or put your own authenticating ingress in front), non-root, read-only root
filesystem, no service account token, resource limits.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from serve.config.profile import Profile
from serve.k8s.chart import ROUTER_SERVICE_PORT, router_service
from serve.k8s.values import SESSION_HEADER
from serve.k8s.values_model import SecretRef

PAGE_PORT = 8501
PAGE_UID = 10001  # the `app` user of frontend/Dockerfile
HEALTH_PATH = "/_stcore/health"
DATA_DIR = "/data"


class PageOptions(BaseModel):
    model_config = ConfigDict(frozen=True)

    release: str = Field(description="The vllm-stack release the page talks to; prefixes the page's objects.")
    namespace: str = Field(description="Namespace of the release and the page.")
    image: str = Field(
        min_length=1, description="The page's image (frontend/Dockerfile), pushed to a registry."
    )
    storage_gib: int = Field(ge=1, description="Size of the chat history volume (SQLite, images included).")
    storage_class: str | None = Field(None, description="StorageClass of that volume; None = the default.")
    api_key_secret: SecretRef | None = Field(description="The Secret key with VLLM_API_KEY; None = no key.")


def page_name(release: str) -> str:
    return f"{release}-chat"


def page_endpoints(profiles: Sequence[Profile], base_url: str) -> list[dict[str, Any]]:
    """FRONTEND_ENDPOINTS: one entry per profile, all at the router's URL, each naming its model and carrying
    the profile's image limit and per-image token cap (what `serve check` compares in compose)."""
    return [
        {
            "name": profile.settings.served_name,
            "base_url": base_url,
            "model": profile.settings.served_name,
            "session_header": SESSION_HEADER,
            "image_limit": profile.settings.image_limit,
            "max_image_tokens": profile.settings.image_max_tokens,
            "video_limit": profile.settings.video_limit,
            "max_video_tokens": profile.settings.video_max_tokens,
            "max_video_frames": profile.settings.video_max_frames,
        }
        for profile in profiles
    ]


def _probe(period_s: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": HEALTH_PATH, "port": "http"},
        "periodSeconds": period_s,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def page_manifests(profiles: Sequence[Profile], options: PageOptions) -> list[dict[str, Any]]:
    """PersistentVolumeClaim, Deployment and Service, in the order `kubectl apply` should create them."""
    name = page_name(options.release)
    metadata = {"namespace": options.namespace}
    labels = {
        "app.kubernetes.io/name": "qwen3-vl-chat",
        "app.kubernetes.io/instance": options.release,
        "app.kubernetes.io/component": "chat-page",
    }
    router_url = f"http://{router_service(options.release)}.{options.namespace}.svc:{ROUTER_SERVICE_PORT}/v1"
    env: list[dict[str, Any]] = [
        {"name": "FRONTEND_ENDPOINTS", "value": json.dumps(page_endpoints(profiles, router_url))},
        {"name": "FRONTEND_DATA_DIR", "value": DATA_DIR},
        # The root filesystem is read-only: Streamlit keeps its per-user files under HOME.
        {"name": "HOME", "value": "/tmp"},
    ]
    if options.api_key_secret:
        ref = options.api_key_secret
        env.append(
            {
                "name": "FRONTEND_API_KEY",
                "valueFrom": {"secretKeyRef": {"name": ref.secret_name, "key": ref.secret_key}},
            }
        )
    claim: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": f"{name}-data", **metadata, "labels": labels},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": f"{options.storage_gib}Gi"}},
            **({"storageClassName": options.storage_class} if options.storage_class else {}),
        },
    }
    container = {
        "name": "page",
        "image": options.image,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "http", "containerPort": PAGE_PORT, "protocol": "TCP"}],
        "env": env,
        "resources": {
            "requests": {"cpu": "250m", "memory": "512Mi"},
            # Image preparation (Pillow) of a 12 MP photo is the peak; several users at once fit in 2 GiB.
            "limits": {"cpu": "2", "memory": "2Gi"},
        },
        "startupProbe": _probe(5, 24),
        "readinessProbe": _probe(10, 3),
        "livenessProbe": _probe(20, 3),
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "chats", "mountPath": DATA_DIR},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, **metadata, "labels": labels},
        "spec": {
            # One pod: the history is one SQLite file on a ReadWriteOnce volume, so an update stops the old pod
            # before the new one mounts it.
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": PAGE_UID,
                        "runAsGroup": PAGE_UID,
                        "fsGroup": PAGE_UID,  # the volume is writable by the page's user
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [
                        {"name": "chats", "persistentVolumeClaim": {"claimName": f"{name}-data"}},
                        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, **metadata, "labels": labels},
        "spec": {
            "type": "ClusterIP",
            "selector": labels,
            "ports": [{"name": "http", "port": PAGE_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    return [claim, deployment, service]
