"""A video in the chat page in a real browser: headless Chromium (Playwright) against `streamlit run
frontend/app.py` with the real tiny vLLM. Covers what AppTest cannot: the file chooser taking an MP4, the
poster frame rendered with its duration, frames and cost, and the streamed answer with its stats.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from harness.tiny_checkpoint import VIDEO_LIMIT, VIDEO_MAX_FRAMES, VIDEO_MAX_TOKENS
from harness.video_clips import write_clip
from tests.helpers.browser import STATS, WAIT_MS, ask, expect_answered, messages, open_chat, start_chat_page
from tests.helpers.streamlit_app import StreamlitApp

pytestmark = pytest.mark.vllm


@pytest.fixture(scope="module")
def video_app(tiny_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StreamlitApp]:
    endpoint = {
        "name": "Tiny A",
        "base_url": tiny_server.base_url,
        "api_key": tiny_server.api_key,
        "image_limit": tiny_server.image_limit,
        "video_limit": VIDEO_LIMIT,
        "max_video_tokens": VIDEO_MAX_TOKENS,
        "max_video_frames": VIDEO_MAX_FRAMES,
    }
    app = start_chat_page(tmp_path_factory.mktemp("video-page"), [endpoint], FRONTEND_MAX_TOKENS="16")
    try:
        yield app
    finally:
        app.stop()


def test_a_video_is_uploaded_shown_with_its_poster_and_cost_and_answered(
    page: Page, video_app: StreamlitApp, tmp_path: Path, tiny_server: Any
) -> None:
    clip = write_clip(tmp_path / "street.mp4", seconds=6, fps=10, width=640, height=360)
    open_chat(page, video_app.url)
    ask(page, "What happens in this clip?", files=[clip])
    answer = expect_answered(page, count=2, stats=1)
    user = messages(page).first
    poster = user.get_by_test_id("stImage")
    expect(poster).to_have_count(1)
    expect(poster.locator("img")).to_be_visible()
    expect(poster).to_contain_text(
        re.compile(rf"street\.mp4 · 6\.0 s · {VIDEO_MAX_FRAMES} frames · ~[\d,]+ tokens")
    )
    expect(user).to_contain_text("frame rate 10 → 2 fps", timeout=WAIT_MS)
    expect(answer.locator(STATS)).to_contain_text(tiny_server.served_name)
