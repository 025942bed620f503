"""Video uploads: check the file, then reduce the clip to the server's video budget before it is sent.

Why here and not on the server: vLLM answers every unreadable video with the same 400 "Could not open video
stream", and a raw phone clip costs far more upload and decode time than the few frames the model sees.
So the page checks the file itself and says what is wrong with it, then keeps only what the server's
Qwen3-VL loader would keep (VIDEO_FPS frames per second, at most VIDEO_MAX_FRAMES, spread evenly over a
longer clip), resizes those frames onto the 32-pixel grid within the per-video token budget, and re-encodes
them as a small MP4 whose frame rate preserves the timestamps. The decoder is OpenCV's bundled FFmpeg: the
one vLLM decodes with, so a file that opens here opens there. No Streamlit here.
"""

from __future__ import annotations

import base64
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import cv2
from cv2.typing import MatLike

from frontend.conversation import DEFAULT_VIDEO_TOKEN_BUDGET, VIDEO_FPS, VIDEO_MAX_FRAMES, VideoAttachment

# vLLM's Qwen3-VL loader never samples fewer frames than this (unless the clip has fewer).
MIN_FRAMES = 4
TEMPORAL_PATCH = 2
FACTOR = 32  # patch 16 x merge 2: one visual token per 2 frames x 32 x 32 pixels
# Each 2-frame group also costs its "<t seconds>" timestamp and vision markers (~10 tokens, measured).
TOKENS_PER_GROUP_OVERHEAD = 10
VIDEO_SUFFIXES = (".mp4", ".webm", ".mov", ".m4v", ".mkv")
POSTER_WIDTH = 320


class VideoError(ValueError):
    """A file that cannot be sent as a video; the message says what is wrong and what to do."""


@dataclass(frozen=True)
class VideoInfo:
    """What the file holds, read with the decoder before anything is cut."""

    width: int
    height: int
    fps: float
    frames: int
    rotation: int

    @property
    def duration_s(self) -> float:
        return self.frames / self.fps if self.fps > 0 else 0.0


def smart_resize(
    frames: int, height: int, width: int, max_pixels: int, min_pixels: int = 4096
) -> tuple[int, int]:
    """Qwen3-VL's video resize: sides on the 32-pixel grid, frames x height x width within the budget."""
    if height < FACTOR or width < FACTOR:
        scale = max(FACTOR / height, FACTOR / width)
        height, width = int(height * scale), int(width * scale)
    h_bar = max(FACTOR, round(height / FACTOR) * FACTOR)
    w_bar = max(FACTOR, round(width / FACTOR) * FACTOR)
    t_bar = max(TEMPORAL_PATCH, round(frames / TEMPORAL_PATCH) * TEMPORAL_PATCH)
    if t_bar * h_bar * w_bar > max_pixels:
        beta = math.sqrt(frames * height * width / max_pixels)
        h_bar = max(FACTOR, math.floor(height / beta / FACTOR) * FACTOR)
        w_bar = max(FACTOR, math.floor(width / beta / FACTOR) * FACTOR)
    elif t_bar * h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (frames * height * width))
        h_bar = math.ceil(height * beta / FACTOR) * FACTOR
        w_bar = math.ceil(width * beta / FACTOR) * FACTOR
    return h_bar, w_bar


def visual_tokens(frames: int, height: int, width: int) -> int:
    """Visual tokens of `frames` frames at height x width (already on the grid): one per 2 x 32 x 32."""
    groups = math.ceil(frames / TEMPORAL_PATCH)
    return groups * (height // FACTOR) * (width // FACTOR)


def prompt_tokens(frames: int, height: int, width: int) -> int:
    """What the video adds to the prompt: its visual tokens plus each 2-frame group's timestamp."""
    return (
        visual_tokens(frames, height, width) + math.ceil(frames / TEMPORAL_PATCH) * TOKENS_PER_GROUP_OVERHEAD
    )


def sample_indices(
    info: VideoInfo, *, fps: float = VIDEO_FPS, max_frames: int = VIDEO_MAX_FRAMES
) -> list[int]:
    """The frames vLLM's Qwen3-VL loader would keep: `fps` per second within [MIN_FRAMES, max_frames]."""
    wanted = int(info.frames / info.fps * fps) if info.fps > 0 else info.frames
    count = min(max(wanted, MIN_FRAMES), max_frames, info.frames)
    if count <= 1:
        return [0]
    step = (info.frames - 1) / (count - 1)
    return [round(index * step) for index in range(count)]  # numpy's linspace(...).round(), as vLLM does


def check_upload(data: bytes, name: str, *, max_mb: int) -> None:
    """Refuse what is certainly not a usable video before decoding anything (cheap checks, clear words)."""
    if not data:
        raise VideoError(f"{name} is empty (0 bytes): choose the video file again.")
    if len(data) > max_mb * 1_000_000:
        raise VideoError(
            f"{name} is {len(data) / 1e6:,.0f} MB, over the {max_mb} MB limit for videos: trim or compress "
            "it (or raise FRONTEND_MAX_VIDEO_MB)."
        )
    kind = _container(data)
    if kind == "audio":
        raise VideoError(f"{name} holds only audio, no picture: send a video with a picture track.")
    if kind is None:
        raise VideoError(
            f"{name} is not a video file (it is not MP4, MOV, WebM or MKV inside, whatever its name says)."
        )


def _container(data: bytes) -> str | None:
    """'mp4', 'webm', 'avi', 'audio' (a sound-only file) or None, from the first bytes."""
    head = data[:64]
    if head[4:8] == b"ftyp":
        # An MP4/MOV whose tracks include a sound handler but no video one is an audio file (.m4a).
        handlers = _mp4_handlers(data)
        return "audio" if "soun" in handlers and "vide" not in handlers else "mp4"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "webm"
    if head.startswith(b"RIFF") and head[8:12] == b"AVI ":
        return "avi"
    if head.startswith((b"RIFF", b"ID3", b"OggS", b"fLaC", b"\xff\xfb", b"\xff\xf3")):
        return "audio"
    if head[4:8] in (b"moov", b"mdat", b"wide", b"free"):
        return "mp4"
    return None


def _mp4_handlers(data: bytes) -> set[str]:
    """The track handler types of an MP4/MOV ('vide', 'soun', ...): each hdlr box names one, 8 bytes in."""
    handlers, at = set(), data.find(b"hdlr")
    while at >= 0 and len(handlers) < 16:
        handlers.add(data[at + 12 : at + 16].decode("latin-1"))
        at = data.find(b"hdlr", at + 4)
    return handlers


def _mp4_codec(data: bytes) -> str | None:
    """The sample entry (codec tag) of an MP4/MOV's first track, e.g. 'avc1', 'hvc1', 'mp4v'."""
    at = data.find(b"stsd")
    if at < 0 or len(data) < at + 20:
        return None
    return data[at + 16 : at + 20].decode("latin-1")


def _describe_unreadable(data: bytes, name: str) -> str:
    """Why OpenCV could not open a file that looks like a video."""
    if _container(data) == "mp4":
        if data.find(b"moov") < 0:
            return (
                f"{name} is cut short: its index (the 'moov' part) is missing, so the upload or the recording "
                "did not finish. Send the complete file."
            )
        codec = _mp4_codec(data)
        if codec and codec.isprintable():
            return (
                f"{name} uses the video codec '{codec.strip()}', which cannot be decoded here (nor by the "
                "server): re-encode it as H.264 MP4."
            )
    return (
        f"{name} cannot be decoded as a video (damaged or an unsupported format): re-encode it as H.264 MP4."
    )


class _Opened:
    """A video file on disk opened with OpenCV (it reads from paths, not bytes); removed on close."""

    def __init__(self, data: bytes, suffix: str) -> None:
        handle, path = tempfile.mkstemp(suffix=suffix or ".mp4")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        self.path = Path(path)
        self.capture = cv2.VideoCapture(path)

    def __enter__(self) -> _Opened:
        return self

    def __exit__(self, *exc: object) -> None:
        self.capture.release()
        self.path.unlink(missing_ok=True)


def read_info(capture: cv2.VideoCapture) -> VideoInfo:
    return VideoInfo(
        width=int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        fps=float(capture.get(cv2.CAP_PROP_FPS) or 0.0),
        frames=int(capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0),
        rotation=int(capture.get(cv2.CAP_PROP_ORIENTATION_META) or 0),
    )


def _read_frames(capture: cv2.VideoCapture, indices: list[int]) -> list[MatLike]:
    """The frames at `indices` (BGR, already turned upright: OpenCV applies the rotation metadata)."""
    frames: list[MatLike] = []
    wanted = iter(indices)
    target = next(wanted, None)
    position = 0
    while target is not None:
        if target - position > 30:  # far ahead: seek instead of decoding every frame in between
            capture.set(cv2.CAP_PROP_POS_FRAMES, target)
            position = target
        ok = capture.grab()
        if not ok:
            break
        if position == target:
            ok, frame = capture.retrieve()
            if ok:
                frames.append(frame)
            target = next(wanted, None)
        position += 1
    return frames


def prepare_video(
    data: bytes,
    name: str,
    *,
    max_mb: int,
    token_budget: int = DEFAULT_VIDEO_TOKEN_BUDGET,
    fps: float = VIDEO_FPS,
    max_frames: int = VIDEO_MAX_FRAMES,
) -> VideoAttachment:
    """Check an uploaded clip and reduce it to the budget; raises VideoError saying what is wrong."""
    check_upload(data, name, max_mb=max_mb)
    with _Opened(data, Path(name).suffix.lower()) as opened:
        if not opened.capture.isOpened():
            raise VideoError(_describe_unreadable(data, name))
        info = read_info(opened.capture)
        if info.frames <= 0 or info.width <= 0 or info.height <= 0:
            raise VideoError(_describe_unreadable(data, name))
        indices = sample_indices(info, fps=fps, max_frames=max_frames)
        frames = _read_frames(opened.capture, indices)
    if not frames:
        raise VideoError(_describe_unreadable(data, name))
    return _reduce(frames, info, indices, name=name, token_budget=token_budget, fps=fps)


def _reduce(
    frames: list[MatLike],
    info: VideoInfo,
    indices: list[int],
    *,
    name: str,
    token_budget: int,
    fps: float,
) -> VideoAttachment:
    """Resize the kept frames onto the grid within the budget and encode them as the MP4 that is sent."""
    notes: list[str] = []
    source_h, source_w = frames[0].shape[:2]  # upright
    kept = list(frames)
    if len(kept) < MIN_FRAMES:
        # vLLM's loader needs a few frames: a still (or a 1-frame file) becomes a short still clip.
        notes.append(f"only {len(kept)} frame(s) in the file: sent as a still clip")
        kept = (kept * MIN_FRAMES)[:MIN_FRAMES]
    height, width = smart_resize(len(kept), source_h, source_w, max_pixels=token_budget * 2 * FACTOR * FACTOR)
    duration = info.duration_s
    if info.fps > fps * 1.01:
        notes.append(f"frame rate {info.fps:g} → {fps:g} fps")
    if duration * fps > len(frames) + 1:
        notes.append(
            f"{duration:,.0f} s sampled as {len(frames)} frames (one every {duration / len(frames):.1f} s)"
        )
    if (width, height) != (source_w, source_h):
        notes.append(f"resolution {source_w}x{source_h} → {width}x{height}")
    if info.rotation:
        notes.append(f"turned upright ({info.rotation}° rotation in the file)")
    resized = [cv2.resize(frame, (width, height), interpolation=cv2.INTER_AREA) for frame in kept]
    # The frame rate that keeps each kept frame at its time in the clip, so the model's timestamps are real.
    out_fps = len(kept) / duration if duration > 0 else fps
    encoded = _encode_mp4(resized, out_fps)
    poster = _poster_jpeg(resized[0])
    return VideoAttachment(
        name=name,
        data_base64=base64.b64encode(encoded).decode("ascii"),
        poster_base64=base64.b64encode(poster).decode("ascii"),
        width=width,
        height=height,
        original_width=source_w,
        original_height=source_h,
        duration_s=round(duration, 2),
        frames=len(kept),
        original_frames=info.frames,
        original_fps=round(info.fps, 3),
        tokens=prompt_tokens(len(kept), height, width),
        notes=notes,
    )


def _encode_mp4(frames: list[MatLike], fps: float) -> bytes:
    handle, path = tempfile.mkstemp(suffix=".mp4")
    os.close(handle)
    try:
        height, width = frames[0].shape[:2]
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"mp4v"), max(fps, 0.01), (width, height))
        for frame in frames:
            writer.write(frame)
        writer.release()
        return Path(path).read_bytes()
    finally:
        Path(path).unlink(missing_ok=True)


def _poster_jpeg(frame: MatLike) -> bytes:
    height, width = frame.shape[:2]
    if width > POSTER_WIDTH:
        frame = cv2.resize(
            frame, (POSTER_WIDTH, max(1, height * POSTER_WIDTH // width)), interpolation=cv2.INTER_AREA
        )
    ok, jpeg = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, 85])
    if not ok:
        raise VideoError("could not make the poster frame")
    return jpeg.tobytes()


def check_attachment(video: VideoAttachment) -> None:
    """A video prepared elsewhere (an imported chat) is what it says: base64 of an MP4 that decodes at its
    stated frame size, and a poster that is a JPEG. Raises VideoError naming it otherwise."""
    label = video.name.strip() or "A video"
    try:
        data = base64.b64decode(video.data_base64, validate=True)
        poster = base64.b64decode(video.poster_base64, validate=True)
    except ValueError as error:
        raise VideoError(f"{label} is not valid base64.") from error
    if not poster.startswith(b"\xff\xd8"):
        raise VideoError(f"{label} has a poster frame that is not a JPEG.")
    with _Opened(data, ".mp4") as opened:
        ok, frame = opened.capture.read() if opened.capture.isOpened() else (False, None)
    if not ok or frame is None:
        raise VideoError(f"{label} cannot be decoded as a video.")
    if frame.shape[:2] != (video.height, video.width):
        raise VideoError(
            f"{label} is {frame.shape[1]}x{frame.shape[0]} pixels, not the {video.width}x{video.height} it "
            "claims to be."
        )
