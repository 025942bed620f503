"""Video without a server: the profiles' budget (and its two traps), the page agreeing with it (serve check),
the planner's start-up cost and budget line, the page's video preparation (frontend/videos.py) for each bad
file, the re-sent history never holding more videos or images than the server takes, and chats with videos
surviving export and import. Clips are real files written by OpenCV in the test.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
import yaml

from frontend.chat_import import ImportRejected, import_chat
from frontend.chat_request import LEFT_OUT_IMAGE, LEFT_OUT_VIDEO, build_request
from frontend.conversation import (
    DEFAULT_VIDEO_TOKEN_BUDGET,
    VIDEO_FPS,
    VIDEO_MAX_FRAMES,
    Conversation,
    GenerationSettings,
    ImageAttachment,
    Message,
)
from frontend.export import export_json, export_markdown
from frontend.videos import VideoError, check_upload, prepare_video, sample_indices, smart_resize
from harness.serve_up import REPO_ROOT
from harness.video_clips import rotated, unknown_codec, wav_audio, write_clip
from serve.cli import main
from serve.config.profile import load_profile, profile_paths
from serve.planner.detect import DetectedGpu
from serve.planner.gpus import GPUS
from serve.planner.model_facts import model_facts
from serve.planner.plan import plan_profile
from tests.test_check import check, edit_profile, project  # noqa: F401 - `project` is a fixture

PROFILES = REPO_ROOT / "profiles"


# ------------------------------------------------------------------------------------------- the profiles


@pytest.mark.parametrize("path", profile_paths(PROFILES), ids=lambda path: path.stem)
def test_profiles_give_video_its_own_budget(path: Path) -> None:
    raw = yaml.safe_load(path.read_text())
    kwargs = raw["mm-processor-kwargs"]
    # Trap 1: a top-level `size` caps videos too (frames x height x width); each modality has its own.
    assert "size" not in kwargs, "a top-level size would squeeze every clip to the image cap"
    assert set(kwargs) == {"images_kwargs", "videos_kwargs"}
    settings = load_profile(path, {}).settings
    assert settings.video_limit == 1
    assert (settings.image_max_tokens, settings.video_max_tokens) == (1280, DEFAULT_VIDEO_TOKEN_BUDGET)
    # The frame budget for vLLM's Qwen3-VL loader (num_frames is ignored by it).
    assert raw["media-io-kwargs"] == {"video": {"fps": VIDEO_FPS, "max_frames": VIDEO_MAX_FRAMES}}
    assert (settings.video_fps, settings.video_max_frames) == (VIDEO_FPS, VIDEO_MAX_FRAMES)
    # Per-request media_io_kwargs would let a client lift the frame budget (tests/test_video_api.py).
    assert "trust-request-mm-kwargs" not in raw


def test_the_tiny_checkpoint_names_the_qwen3_vl_video_processor() -> None:
    """Trap 2: vLLM uses its Qwen3-VL video loader (fps, max_frames) only for this processor type."""
    from harness.tiny_checkpoint import ensure_tiny_checkpoint

    config = json.loads((ensure_tiny_checkpoint() / "video_preprocessor_config.json").read_text())
    assert config["video_processor_type"] == "Qwen3VLVideoProcessor"
    assert config["auto_map"]["AutoVideoProcessor"].endswith("TinyQwen3VLVideoProcessor")


def test_compose_tells_the_page_the_profiles_video_budget() -> None:
    compose = yaml.safe_load((REPO_ROOT / "docker-compose.yml").read_text())
    endpoints = json.loads(compose["services"]["frontend"]["environment"]["FRONTEND_ENDPOINTS"])
    for endpoint in endpoints:
        assert (endpoint["video_limit"], endpoint["max_video_tokens"], endpoint["max_video_frames"]) == (
            1,
            DEFAULT_VIDEO_TOKEN_BUDGET,
            VIDEO_MAX_FRAMES,
        )


@pytest.mark.parametrize(
    ("changes", "finding"),
    [
        (
            {"limit_mm_per_prompt": {"image": 4, "video": 2}},
            "video_limit is 1 but profile 4b takes 2 video(s)",
        ),
        (
            {
                "mm_processor_kwargs": {
                    "images_kwargs": {"size": {"longest_edge": 1310720, "shortest_edge": 65536}},
                    "videos_kwargs": {"size": {"longest_edge": 2048 * 2048, "shortest_edge": 131072}},
                }
            },
            "max_video_tokens is 1280 but profile 4b takes 2048 tokens per video",
        ),
        (
            {"media_io_kwargs": {"video": {"fps": 2, "max_frames": 64}}},
            "max_video_frames is 16 but profile 4b takes 64",
        ),
    ],
    ids=["limit", "tokens", "frames"],
)
def test_serve_check_keeps_the_pages_video_budget_in_step(
    project: Path,  # noqa: F811 - the fixture imported above
    changes: dict,
    finding: str,
) -> None:
    edit_profile(project, "4b", **changes)
    errors = check(project)
    assert any("frontend endpoint 'Qwen3-VL-4B'" in error and finding in error for error in errors), errors
    assert not any("Qwen3-VL-8B" in error for error in errors)


# ---------------------------------------------------------------------------------------------- the planner


def test_a_video_larger_than_an_image_costs_start_up_memory_in_the_plan(tmp_path: Path) -> None:
    l4 = DetectedGpu.idle(next(kind for kind in GPUS.values() if kind.label.startswith("L4")))
    shipped = load_profile(PROFILES / "8b.yaml", {})
    facts = model_facts(shipped.settings.model)
    as_shipped = plan_profile(shipped, facts, l4)
    assert as_shipped.video_startup_gib == 0.0, "the shipped video budget is one image's: no extra peak"
    assert (as_shipped.image_max_tokens, as_shipped.video_max_tokens) == (1280, 1280)

    raw = yaml.safe_load((PROFILES / "8b.yaml").read_text())
    raw["mm-processor-kwargs"]["videos_kwargs"]["size"]["longest_edge"] = 8192 * 2048
    bigger = tmp_path / "8b.yaml"
    bigger.write_text(yaml.safe_dump(raw))
    big = plan_profile(load_profile(bigger, {}), facts, l4)
    assert big.video_startup_gib > 0.2
    assert big.runtime_overhead_gib == pytest.approx(
        as_shipped.runtime_overhead_gib + big.video_startup_gib, abs=0.01
    )
    assert big.max_tokens_in_cache < as_shipped.max_tokens_in_cache
    assert big.video_max_tokens == 8192

    raw["limit-mm-per-prompt"]["video"] = 0
    bigger.write_text(yaml.safe_dump(raw))
    off = plan_profile(load_profile(bigger, {}), facts, l4)
    assert (off.video_startup_gib, off.video_max_tokens) == (0.0, None)


def test_serve_plan_prints_the_per_video_budget_next_to_the_images(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["plan", "4b", "--gpu", "L4"]) == 0
    out = capsys.readouterr().out
    assert "tokens per image / per video" in out
    assert "1,280 / 1,280" in out
    assert "of it: the largest video" in out


# ------------------------------------------------------------------------------------------- page-side prep


def clip(tmp_path: Path, name: str = "clip.mp4", **kwargs: float) -> bytes:
    return write_clip(tmp_path / name, **kwargs).read_bytes()


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        pytest.param(lambda _: b"", "is empty (0 bytes)", id="zero-bytes"),
        pytest.param(lambda d: clip(d, seconds=2)[:4000], "is cut short", id="truncated"),
        pytest.param(lambda _: b"hello\n" * 100, "is not a video file", id="text-named-mp4"),
        pytest.param(lambda _: wav_audio(), "holds only audio", id="audio-only"),
        pytest.param(
            lambda _: (
                b"\0\0\0\x18ftypM4A \0\0\0\0M4A mp42" + b"\0\0\0\x21hdlr" + b"\0" * 8 + b"soun" + b"\0" * 13
            ),
            "holds only audio",
            id="m4a-audio-only",
        ),
        pytest.param(lambda d: unknown_codec(clip(d, seconds=2)), "uses the video codec 'zzzz'", id="codec"),
    ],
)
def test_a_bad_file_is_refused_saying_what_is_wrong(tmp_path: Path, make, fragment: str) -> None:
    with pytest.raises(VideoError) as error:
        prepare_video(make(tmp_path), "upload.mp4", max_mb=200)
    assert "upload.mp4" in str(error.value)
    assert fragment in str(error.value)


def test_a_file_over_the_video_cap_is_refused_before_decoding() -> None:
    """A 2-hour recording is GBs: the size says no before anything is decoded (no 2 h of video written)."""
    with pytest.raises(
        VideoError, match=r"is 201 MB, over the 200 MB limit for videos.*FRONTEND_MAX_VIDEO_MB"
    ):
        check_upload(b"\0\0\0\x18ftypmp42" + b"\0" * 201_000_000, "two-hours.mp4", max_mb=200)


def test_a_clip_is_sampled_and_resized_as_the_server_would(tmp_path: Path) -> None:
    video = prepare_video(clip(tmp_path, seconds=30, fps=30, width=1280, height=720), "walk.mp4", max_mb=200)
    assert video.frames == VIDEO_MAX_FRAMES
    assert (video.original_frames, video.original_fps, video.duration_s) == (900, 30.0, 30.0)
    assert video.width % 32 == 0 and video.height % 32 == 0
    assert (video.height, video.width) == smart_resize(
        VIDEO_MAX_FRAMES, 720, 1280, max_pixels=DEFAULT_VIDEO_TOKEN_BUDGET * 2048
    )
    assert video.tokens <= DEFAULT_VIDEO_TOKEN_BUDGET + (VIDEO_MAX_FRAMES // 2) * 10
    assert any("frame rate 30 → 2 fps" in note for note in video.notes)
    assert any("30 s sampled as 16 frames" in note for note in video.notes)
    assert any("resolution 1280x720 →" in note for note in video.notes)
    assert video.poster.startswith(b"\xff\xd8")
    assert video.data.startswith(b"\0\0\0", 0) and video.data[4:8] == b"ftyp"
    assert len(video.data) < 1_000_000


def test_frame_indices_are_the_loaders() -> None:
    """vLLM's Qwen3-VL loader: int(frames / fps x 2) frames within [4, max_frames], spread evenly."""
    from frontend.videos import VideoInfo

    assert sample_indices(VideoInfo(320, 240, 10.0, 30, 0)) == [0, 6, 12, 17, 23, 29]  # 3 s: 6 frames
    assert sample_indices(VideoInfo(320, 240, 10.0, 10, 0)) == [0, 3, 6, 9]  # 1 s: at least 4
    assert sample_indices(VideoInfo(320, 240, 10.0, 2, 0)) == [0, 1]  # never more than the clip has
    assert len(sample_indices(VideoInfo(320, 240, 10.0, 6000, 0))) == VIDEO_MAX_FRAMES


def test_a_rotated_stream_is_sent_upright(tmp_path: Path) -> None:
    video = prepare_video(rotated(clip(tmp_path, seconds=2, fps=10)), "phone.mp4", max_mb=200)
    assert video.height > video.width
    assert (video.original_width, video.original_height) == (240, 320)
    assert any("90° rotation" in note for note in video.notes)


# ------------------------------------------------------------------------------- history, export and import


def tiny_image() -> ImageAttachment:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(buffer, "PNG")
    data = base64.b64encode(buffer.getvalue()).decode()
    return ImageAttachment(
        name="red.png",
        mime_type="image/png",
        data_base64=data,
        width=64,
        height=64,
        original_width=64,
        original_height=64,
        tokens=4,
    )


def test_a_long_chat_mixing_images_and_videos_never_exceeds_the_servers_limits(tmp_path: Path) -> None:
    video = prepare_video(clip(tmp_path, seconds=2, fps=10), "clip.mp4", max_mb=200)
    history: list[Message] = []
    for turn in range(6):
        images = [tiny_image()] * (turn % 3)
        videos = [video] if turn % 2 == 0 else []
        history.append(Message(role="user", text=f"turn {turn}", images=images, videos=videos))
        request = build_request(history, GenerationSettings(), endpoint="A", image_limit=2, video_limit=1)
        parts = [
            part for message in request.messages for part in message["content"] if isinstance(part, dict)
        ]
        sent_videos = [part for part in parts if part["type"] == "video_url"]
        sent_images = [part for part in parts if part["type"] == "image_url"]
        assert len(sent_videos) <= 1 and len(sent_images) <= 2
        assert (request.videos_sent, request.images_sent) == (len(sent_videos), len(sent_images))
        history.append(Message(role="assistant"))
    # The latest video (turn 4) is the one kept; the older ones are notes.
    texts = [part.get("text") for message in request.messages for part in message["content"]]
    assert texts.count(LEFT_OUT_VIDEO) == 2 and LEFT_OUT_IMAGE in texts
    last_video_turn = next(
        i for i, m in enumerate(request.messages) if any(p["type"] == "video_url" for p in m["content"])
    )
    assert request.messages[last_video_turn]["content"][-1]["text"] == "turn 4"
    assert "takes at most 1 video(s) per request" in request.notice("A", 2, 1)


def test_a_chat_with_a_video_survives_export_and_import(tmp_path: Path) -> None:
    video = prepare_video(clip(tmp_path, seconds=3, fps=10), "clip.mp4", max_mb=200)
    chat = Conversation(messages=[Message(role="user", text="What happens?", videos=[video])])
    data = export_json(chat)
    back = import_chat(data, max_bytes=len(data) + 1)
    assert back.messages[0].videos == chat.messages[0].videos
    markdown = export_markdown(chat)
    assert "Videos:" in markdown and "`clip.mp4`: 3 s, " in markdown and f"{video.tokens} tokens" in markdown


def test_an_imported_chat_with_a_broken_video_is_refused(tmp_path: Path) -> None:
    video = prepare_video(clip(tmp_path, seconds=3, fps=10), "clip.mp4", max_mb=200)
    broken = video.model_copy(update={"data_base64": base64.b64encode(b"not a video").decode()})
    data = export_json(Conversation(messages=[Message(role="user", text="hi", videos=[broken])]))
    with pytest.raises(ImportRejected, match=r"broken video: clip\.mp4 cannot be decoded"):
        import_chat(data, max_bytes=len(data) + 1)
