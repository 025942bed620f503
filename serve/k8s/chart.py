"""The production-stack chart this package was written against, and the commands that install it.

Everything in serve/k8s that depends on the chart's behaviour (which values key becomes which vLLM flag,
what the router does) was read from the chart's templates at this commit; a new chart version means
reading them again, so the version is pinned in the install line rather than left to "latest".
"""

from __future__ import annotations

import shlex

CHART_NAME = "vllm-stack"
CHART_VERSION = "0.1.12"
CHART_COMMIT = "a6c01db05f65f556235413ba8dbcfb0c01132fff"  # vllm-project/production-stack, 2026-08-05
HELM_REPO_NAME = "vllm"
HELM_REPO_URL = "https://vllm-project.github.io/production-stack"
# The chart defaults to lmcache/lmstack-router:latest with imagePullPolicy Always, so a router could change
# under a running release; each chart release also pushes the router as v<chart version>.
ROUTER_IMAGE = "lmcache/lmstack-router"
ROUTER_TAG = f"v{CHART_VERSION}"
# What the chart's pods listen on (servingEngineSpec.containerPort) and its Services expose.
ENGINE_CONTAINER_PORT = 8000
ROUTER_SERVICE_PORT = 80


def router_service(release: str) -> str:
    """The router's Service name (templates/service-router.yaml)."""
    return f"{release}-router-service"


def helm_commands(release: str, namespace: str, values_file: str) -> list[str]:
    """`helm repo add` and `helm upgrade --install` for the pinned chart version."""
    return [
        f"helm repo add {HELM_REPO_NAME} {HELM_REPO_URL}",
        "helm repo update",
        shlex.join(
            [
                "helm",
                "upgrade",
                "--install",
                release,
                f"{HELM_REPO_NAME}/{CHART_NAME}",
                "--version",
                CHART_VERSION,
                "--namespace",
                namespace,
                "-f",
                values_file,
            ]
        ),
    ]
