"""Video in the chat page (AppTest) against the real tiny vLLM: a clip is checked and cut to the budget in the
page, shown as its poster with duration, frames kept and token cost, and answered; each bad video is
refused with a message that says what is wrong, the typed text back in the input and the history intact;
and a chat with more videos than the server takes keeps only the latest in the request.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from streamlit.testing.v1 import AppTest

from frontend.conversation import AnswerStatus
from harness.tiny_checkpoint import VIDEO_LIMIT, VIDEO_MAX_FRAMES, VIDEO_MAX_TOKENS
from harness.video_clips import rotated, unknown_codec, wav_audio, write_clip
from tests.conftest import TinyServer
from tests.helpers.images import image_bytes
from tests.helpers.page import File, saved, send, start_page, stats_lines
from tests.helpers.pdfs import pdf_bytes

pytestmark = pytest.mark.vllm

TYPED = "What happens in this clip?"
Page = Callable[..., AppTest]


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def open_page(monkeypatch: pytest.MonkeyPatch, data_dir: Path, tiny_server: TinyServer) -> Page:
    endpoint = {
        "name": "Tiny A",
        "base_url": tiny_server.base_url,
        "api_key": tiny_server.api_key,
        "image_limit": tiny_server.image_limit,
        "video_limit": VIDEO_LIMIT,
        "max_video_tokens": VIDEO_MAX_TOKENS,
        "max_video_frames": VIDEO_MAX_FRAMES,
    }

    def start(**variables: str) -> AppTest:
        return start_page(
            monkeypatch, data_dir, [endpoint], timeout_s=180, **{"FRONTEND_MAX_TOKENS": "8", **variables}
        )

    return start


def mp4(tmp_path: Path, name: str = "clip.mp4", **kwargs: float) -> bytes:
    return write_clip(tmp_path / name, **kwargs).read_bytes()


def test_a_video_is_cut_to_the_budget_shown_with_its_poster_and_answered(
    open_page: Page, tmp_path: Path, data_dir: Path, tiny_server: TinyServer
) -> None:
    page = open_page()
    send(page, TYPED, ("walk.mp4", mp4(tmp_path, seconds=6, fps=10, width=640, height=480), "video/mp4"))
    assert not page.error, [error.value for error in page.error]
    user, answer = page.chat_message
    caption = user.get("image")[0].captions[0]
    assert f"walk.mp4 · 6.0 s · {VIDEO_MAX_FRAMES} frames · \\~" in caption and "tokens" in caption
    cut = " ".join(item.value for item in user.caption)
    assert "frame rate 10 → 2 fps" in cut
    assert f"`{tiny_server.served_name}`" in stats_lines(answer)[0]
    stored = saved(data_dir, page)
    video = stored.messages[0].videos[0]
    assert (video.frames, video.original_frames, video.duration_s) == (VIDEO_MAX_FRAMES, 60, 6.0)
    assert video.tokens <= VIDEO_MAX_TOKENS + 50
    prompt_tokens = stored.messages[1].answers[0].stats.prompt_tokens
    assert prompt_tokens is not None and prompt_tokens > video.tokens


BAD: dict[str, tuple[Callable[[Path], bytes], tuple[str, ...]]] = {
    "zero-bytes": (lambda _: b"", ("is empty (0 bytes)",)),
    "truncated": (lambda d: mp4(d, seconds=2)[:4000], ("is cut short",)),
    "text-named-mp4": (lambda _: b"not a video at all\n" * 20, ("is not a video file",)),
    "audio-only": (lambda _: wav_audio(), ("only audio",)),
    "unknown-codec": (lambda d: unknown_codec(mp4(d, seconds=2)), ("codec 'zzzz'", "H.264")),
    "over-the-cap": (
        lambda d: mp4(d, seconds=2) + b"\0" * 1_100_000,
        ("over the 1 MB limit", "FRONTEND_MAX_VIDEO_MB"),
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_video_is_refused_saying_why_and_nothing_is_lost(
    open_page: Page, tmp_path: Path, data_dir: Path, case: str
) -> None:
    page = open_page(FRONTEND_MAX_VIDEO_MB="1")
    send(page, "First, a good clip.", ("good.mp4", mp4(tmp_path, "good.mp4", seconds=2, fps=10), "video/mp4"))
    assert [message.name for message in page.chat_message] == ["user", "assistant"]
    before = saved(data_dir, page)
    make, fragments = BAD[case]
    send(page, TYPED, (f"{case}.mp4", make(tmp_path), "video/mp4"))
    errors = [error.value for error in page.error]
    assert len(errors) == 1, errors
    assert f"{case}.mp4" in errors[0]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert page.chat_input[0].proto.value == TYPED, "the typed text was not put back into the input"
    assert [message.name for message in page.chat_message] == ["user", "assistant"]
    assert saved(data_dir, page) == before, "the stored conversation changed"


ODD: dict[str, tuple[Callable[[Path], bytes], str]] = {
    "one-frame": (lambda d: mp4(d, seconds=0.1, fps=10), "sent as a still clip"),
    "4k-60fps": (lambda d: mp4(d, seconds=0.1, fps=60, width=3840, height=2160), "resolution 3840x2160 →"),
    "claims-2-hours": (lambda d: mp4(d, seconds=7200, fps=0.01, width=64, height=64), "7,200 s sampled as"),
    "rotated-stream": (lambda d: rotated(mp4(d, seconds=2, fps=10)), "turned upright (90° rotation"),
}


@pytest.mark.parametrize("case", list(ODD))
def test_an_odd_video_is_prepared_and_answered_saying_what_was_cut(
    open_page: Page, tmp_path: Path, data_dir: Path, tiny_server: TinyServer, case: str
) -> None:
    """vLLM itself refuses a 1-frame file (tests/test_video_api.py); the page sends it as a still clip."""
    page = open_page()
    make, note = ODD[case]
    send(page, TYPED, (f"{case}.mp4", make(tmp_path), "video/mp4"))
    assert not page.error, [error.value for error in page.error]
    user, answer = page.chat_message
    assert note in " ".join(item.value for item in user.caption)
    assert f"`{tiny_server.served_name}`" in stats_lines(answer)[0]
    if case == "rotated-stream":  # sent upright: portrait
        video = saved(data_dir, page).messages[0].videos[0]
        assert video.height > video.width
    assert httpx.get(f"{tiny_server.root_url}/health", timeout=10).status_code == 200


def test_a_chat_with_more_videos_than_the_server_takes_keeps_the_latest(
    open_page: Page, tmp_path: Path, data_dir: Path, tiny_server: TinyServer
) -> None:
    page = open_page()
    for turn in range(VIDEO_LIMIT + 1):
        send(
            page,
            f"Clip {turn}",
            (f"clip{turn}.mp4", mp4(tmp_path, f"c{turn}.mp4", seconds=2 + turn), "video/mp4"),
        )
        assert not page.error, [error.value for error in page.error]
    stored = saved(data_dir, page)
    answers = [message for message in stored.messages if message.role == "assistant"]
    assert len(answers) == VIDEO_LIMIT + 1
    assert all(answer.answers[0].content and answer.answers[0].stats.prompt_tokens for answer in answers)
    assert any("oldest video(s)" in notice for notice in answers[-1].notices)


def test_a_long_chat_mixing_images_pdfs_and_videos_stays_within_the_servers_limits(
    open_page: Page, tmp_path: Path, data_dir: Path, tiny_server: TinyServer
) -> None:
    """The real server refuses a request over its image or video limit (400): every turn answered means the
    re-sent history never exceeded them, whatever the mix."""
    page = open_page()
    turns: list[tuple[str, list[File]]] = [
        ("A photo", [("photo.png", image_bytes(96, 64), "image/png")]),
        ("A report", [("report.pdf", pdf_bytes(4), "application/pdf")]),
        (
            "A clip and a photo",
            [
                ("a.mp4", mp4(tmp_path, "a.mp4", seconds=2), "video/mp4"),
                ("b.png", image_bytes(64, 96), "image/png"),
            ],
        ),
        ("Another clip", [("b.mp4", mp4(tmp_path, "b.mp4", seconds=3), "video/mp4")]),
        ("Another report", [("memo.pdf", pdf_bytes(3), "application/pdf")]),
    ]
    for text, files in turns:
        send(page, text, *files)
        assert not page.error, [error.value for error in page.error]
    stored = saved(data_dir, page)
    answers = [message.answers[0] for message in stored.messages if message.role == "assistant"]
    assert len(answers) == len(turns)
    assert all(answer.status is AnswerStatus.DONE for answer in answers), [a.error for a in answers]
    assert all(answer.stats.prompt_tokens for answer in answers)
    users = [message for message in stored.messages if message.role == "user"]
    assert (
        sum(len(message.images) for message in users) > tiny_server.image_limit
    )  # more than one request takes
    assert sum(len(message.videos) for message in users) > VIDEO_LIMIT
