"""`serve gateway --upstream`: attached to an instance it did not start (compose's model containers), here the
session's real tiny vLLM, which has a key of its own (SERVE_UPSTREAM_API_KEY) apart from the gateway's."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest

from tests.conftest import TinyServer
from tests.helpers.gateway import running_gateway

pytestmark = pytest.mark.vllm


def test_routes_to_an_attached_instance_with_its_own_key(tiny_server: TinyServer, tmp_path: Path) -> None:
    key = secrets.token_urlsafe(16)
    profile = tiny_server.profile_path  # profile name: its file name
    args = ["--upstream", f"{profile.stem}={tiny_server.base_url}"]
    upstream_key = {"SERVE_UPSTREAM_API_KEY": tiny_server.api_key}
    with running_gateway(tmp_path, [profile], args, key, env=upstream_key) as gateway:
        gateway.wait_states({tiny_server.served_name: "running"}, 120)
        assert "swap by sleep (attached instances (--upstream) swap by sleep/wake)" in gateway.output()
        body = {
            "model": tiny_server.served_name,
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 4,
        }
        url = f"{gateway.base_url}/chat/completions"
        assert (
            httpx.post(url, json=body, headers={"Authorization": f"Bearer {tiny_server.api_key}"}).status_code
            == 401
        )
        reply = httpx.post(url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        assert reply.status_code == 200 and reply.json()["model"] == tiny_server.served_name
        listed = httpx.get(f"{gateway.base_url}/models", headers={"Authorization": f"Bearer {key}"}).json()
        assert [(m["id"], m["state"], m["profile"]) for m in listed["data"]] == [
            (tiny_server.served_name, "running", profile.stem)
        ]
        assert gateway.tcp_listeners() == [(gateway.process.pid, gateway.port)]  # it started nothing
