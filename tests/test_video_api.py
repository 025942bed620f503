"""Video through the API, straight to the real tiny vLLM served with the profiles' video layout: one video
per request, a frame budget for vLLM's Qwen3-VL loader (media-io-kwargs) and a pixel budget of its own
(videos_kwargs). Clips are real files written by OpenCV in the test.

What is pinned: a prepared clip costs what the page says it costs (frontend/videos.py); a raw clip sent by
any client is held to the server's budget (frames and pixels); and vLLM's answer to each bad video, with
the server healthy afterwards. vLLM answers every unreadable file with the same 400 "Could not open video
stream", which is why the page checks files itself (tests/test_video_prepare.py).
"""

from __future__ import annotations

import base64
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from frontend.videos import TOKENS_PER_GROUP_OVERHEAD, prepare_video
from harness.tiny_checkpoint import VIDEO_FPS, VIDEO_LIMIT, VIDEO_MAX_FRAMES, VIDEO_MAX_TOKENS
from harness.video_clips import rotated, unknown_codec, wav_audio, write_clip
from tests.conftest import TinyServer

pytestmark = pytest.mark.vllm

QUESTION = {"type": "text", "text": "What happens in this clip?"}


def video_part(data: bytes, mime: str = "video/mp4") -> dict[str, Any]:
    return {
        "type": "video_url",
        "video_url": {"url": f"data:{mime};base64,{base64.b64encode(data).decode()}"},
    }


@pytest.fixture(scope="module")
def client(tiny_server: TinyServer) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=tiny_server.base_url, api_key=tiny_server.api_key, max_retries=0, timeout=120
    )


@pytest.fixture(scope="module")
def ask(client: openai.OpenAI, tiny_server: TinyServer) -> Callable[[list[dict[str, Any]]], int]:
    """Prompt tokens of one request with these content parts."""

    def prompt_tokens(parts: list[dict[str, Any]]) -> int:
        response = client.chat.completions.create(
            model=tiny_server.served_name, messages=[{"role": "user", "content": parts}], max_tokens=2
        )
        return response.usage.prompt_tokens

    return prompt_tokens


@pytest.fixture(scope="module")
def text_only(ask: Callable[[list[dict[str, Any]]], int]) -> int:
    return ask([QUESTION])


@pytest.mark.parametrize(
    ("seconds", "fps", "width", "height"),
    [
        pytest.param(3, 10, 320, 240, id="3s-320x240"),
        pytest.param(20, 10, 640, 480, id="20s-640x480"),
        pytest.param(0.1, 60, 3840, 2160, id="4k-60fps"),
    ],
)
def test_a_prepared_clip_costs_what_the_page_says_within_the_budget(
    tmp_path: Path,
    ask: Callable[[list[dict[str, Any]]], int],
    text_only: int,
    seconds: float,
    fps: float,
    width: int,
    height: int,
) -> None:
    clip = write_clip(
        tmp_path / "clip.mp4", seconds=seconds, fps=fps, width=width, height=height
    ).read_bytes()
    video = prepare_video(
        clip,
        "clip.mp4",
        max_mb=200,
        token_budget=VIDEO_MAX_TOKENS,
        fps=VIDEO_FPS,
        max_frames=VIDEO_MAX_FRAMES,
    )
    cost = ask([video_part(video.data), QUESTION]) - text_only
    assert abs(cost - video.tokens) <= 4, (cost, video)
    groups = math.ceil(video.frames / 2)
    assert cost <= VIDEO_MAX_TOKENS + groups * TOKENS_PER_GROUP_OVERHEAD


def test_a_raw_clip_from_any_client_is_held_to_the_servers_frame_budget(
    tmp_path: Path, ask: Callable[[list[dict[str, Any]]], int], text_only: int
) -> None:
    """30 s at 10 fps, 64x64 (4 visual tokens per 2-frame group): at the loader's 1 fps it would be 30
    frames (15 groups); max_frames keeps 8 (4 groups), the pixel budget does not bind at this size."""
    clip = write_clip(tmp_path / "long.mp4", seconds=30, fps=10, width=64, height=64).read_bytes()
    cost = ask([video_part(clip), QUESTION]) - text_only
    groups = VIDEO_MAX_FRAMES // 2
    assert groups * 4 <= cost <= groups * (4 + TOKENS_PER_GROUP_OVERHEAD + 2)
    uncapped_groups = 30 * VIDEO_FPS // 2
    assert cost < uncapped_groups * 4 + uncapped_groups * TOKENS_PER_GROUP_OVERHEAD


def test_a_raw_big_clip_is_held_to_the_servers_pixel_budget(
    tmp_path: Path, ask: Callable[[list[dict[str, Any]]], int], text_only: int
) -> None:
    """20 s of 640x480: 8 frames at full size would be 4 x 300 = 1,200 visual tokens; videos_kwargs caps
    the video (not the image cap, which a top-level `size` would apply)."""
    clip = write_clip(tmp_path / "big.mp4", seconds=20, fps=10, width=640, height=480).read_bytes()
    cost = ask([video_part(clip), QUESTION]) - text_only
    assert (
        VIDEO_MAX_TOKENS * 0.8
        <= cost
        <= VIDEO_MAX_TOKENS + (VIDEO_MAX_FRAMES // 2) * TOKENS_PER_GROUP_OVERHEAD
    )


def test_a_video_and_images_in_one_request_are_answered(
    tmp_path: Path, ask: Callable[[list[dict[str, Any]]], int], text_only: int
) -> None:
    from tests.helpers.images import png_data_url

    clip = write_clip(tmp_path / "clip.webm.mp4", seconds=2, fps=10).read_bytes()
    image = {"type": "image_url", "image_url": {"url": png_data_url(64, 64)}}
    assert ask([image, video_part(clip, "video/webm"), QUESTION]) > text_only


def test_more_videos_than_the_limit_get_vllms_400(
    tmp_path: Path, client: openai.OpenAI, tiny_server: TinyServer
) -> None:
    clip = video_part(write_clip(tmp_path / "clip.mp4", seconds=2, fps=10).read_bytes())
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(
            model=tiny_server.served_name,
            messages=[{"role": "user", "content": [clip] * (VIDEO_LIMIT + 1) + [QUESTION]}],
            max_tokens=2,
        )
    assert f"At most {VIDEO_LIMIT} video(s) may be provided in one prompt" in str(error.value)


def test_a_video_url_outside_the_allowed_domains_is_refused(
    client: openai.OpenAI, tiny_server: TinyServer
) -> None:
    """The media-domain lock holds for videos too: no server-side fetching."""
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(
            model=tiny_server.served_name,
            messages=[
                {
                    "role": "user",
                    "content": [
                        {"type": "video_url", "video_url": {"url": "http://example.com/a.mp4"}},
                        QUESTION,
                    ],
                }
            ],
            max_tokens=2,
        )
    assert "allowed domains" in str(error.value)


def _clip(tmp_path: Path, **kwargs: float) -> bytes:
    return write_clip(tmp_path / "clip.mp4", **kwargs).read_bytes()


BAD_VIDEOS: dict[str, tuple[Callable[[Path], bytes], int, str]] = {
    # name: (the file, vLLM's status, a fragment of its answer)
    "zero-bytes": (lambda _: b"", 400, "Could not open video stream"),
    "truncated-mp4": (lambda d: _clip(d, seconds=2)[:4000], 400, "Could not open video stream"),
    "text-named-mp4": (lambda _: b"not a video at all\n" * 20, 400, "Could not open video stream"),
    "audio-only": (lambda _: wav_audio(), 400, "Could not open video stream"),
    "unknown-codec": (lambda d: unknown_codec(_clip(d, seconds=2)), 400, "Could not open video stream"),
    # vLLM's OpenCV decoder returns no frame for a 1-frame mp4v file, and the processor fails on it.
    "one-frame": (lambda d: _clip(d, seconds=0.1, fps=10), 400, "Failed to apply Qwen3VLProcessor"),
    "4k-60fps": (lambda d: _clip(d, seconds=0.1, fps=60, width=3840, height=2160), 200, ""),
    "claims-2-hours": (lambda d: _clip(d, seconds=7200, fps=0.01, width=64, height=64), 200, ""),
    "rotated-stream": (lambda d: rotated(_clip(d, seconds=2)), 200, ""),
}


@pytest.mark.parametrize("name", list(BAD_VIDEOS))
def test_bad_videos_get_vllms_answer_and_the_server_stays_healthy(
    tmp_path: Path, client: openai.OpenAI, tiny_server: TinyServer, name: str
) -> None:
    make, status, fragment = BAD_VIDEOS[name]
    messages = [{"role": "user", "content": [video_part(make(tmp_path)), QUESTION]}]
    if status == 200:
        response = client.chat.completions.create(
            model=tiny_server.served_name, messages=messages, max_tokens=2
        )
        assert response.usage.prompt_tokens > 0
    else:
        with pytest.raises(openai.APIStatusError) as error:
            client.chat.completions.create(model=tiny_server.served_name, messages=messages, max_tokens=2)
        assert error.value.status_code == status
        assert fragment in str(error.value)
    assert httpx.get(f"{tiny_server.root_url}/health", timeout=10).status_code == 200


def test_a_client_cannot_lift_the_frame_budget_per_request(
    tmp_path: Path, client: openai.OpenAI, tiny_server: TinyServer
) -> None:
    """vLLM 0.32 refuses a request's own `media_io_kwargs` unless started with --trust-request-mm-kwargs,
    which no profile sets: the frame budget holds for every client."""
    clip = write_clip(tmp_path / "long.mp4", seconds=30, fps=10, width=64, height=64).read_bytes()
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(
            model=tiny_server.served_name,
            messages=[{"role": "user", "content": [video_part(clip), QUESTION]}],
            max_tokens=2,
            extra_body={"media_io_kwargs": {"video": {"max_frames": 4 * VIDEO_MAX_FRAMES}}},
        )
    assert "Per-request media_io_kwargs are disabled by default" in str(error.value)
    assert "--trust-request-mm-kwargs" in str(error.value)
