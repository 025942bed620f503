"""The profiles' server-side image budget (mm-processor-kwargs size) really bounds what an image costs in vLLM,
for API clients that send images at full size."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from harness.serve_up import ServeUp, free_port
from harness.tiny_checkpoint import harness_env, write_tiny_profile
from serve.config.profile import load_profile, resolve_profile_path
from tests.conftest import TinyServer
from tests.helpers.images import image_data_url, image_message

pytestmark = pytest.mark.vllm

CAP_PIXELS = 16 * 32 * 32  # 16 visual tokens; the tiny checkpoint's own maximum is 64 tokens


def prompt_tokens(base_url: str, api_key: str, model: str, url: str) -> int:
    client = openai.OpenAI(base_url=base_url, api_key=api_key, max_retries=0)
    reply = client.chat.completions.create(
        model=model, messages=[image_message("What is it?", url)], max_tokens=1
    )
    return reply.usage.prompt_tokens


def test_every_profile_caps_images_like_the_page_default() -> None:
    for name in ("8b", "4b", "8b-fp8", "4b-fp8", "8b-thinking", "4b-thinking"):
        assert load_profile(resolve_profile_path(name, None)).settings.image_max_tokens == 1280, name


def test_mm_processor_kwargs_size_caps_the_visual_tokens(
    tmp_path: Path, tiny_checkpoint: Path, tiny_server: TinyServer
) -> None:
    port = free_port()
    size = {"longest_edge": CAP_PIXELS, "shortest_edge": 32 * 32}
    profile = write_tiny_profile(
        tmp_path / "capped.yaml",
        checkpoint=tiny_checkpoint,
        port=port,
        extra={"mm-processor-kwargs": {"size": size}},
    )
    assert load_profile(profile).settings.image_max_tokens == 16
    server = ServeUp(
        args=[str(profile)], env={**harness_env(cache_dir=tmp_path), "VLLM_API_KEY": "k"}, workdir=tmp_path
    )
    server.start()
    try:
        server.wait_ready(300)
        url = image_data_url(512, 512)  # 256 tokens at full size: 64 after the checkpoint's default cap
        uncapped = prompt_tokens(tiny_server.base_url, tiny_server.api_key, tiny_server.served_name, url)
        capped = prompt_tokens(f"http://127.0.0.1:{port}/v1", "k", tiny_server.served_name, url)
        assert uncapped - capped == 64 - 16
        assert server.stop() == 0
    finally:
        server.kill_everything()
