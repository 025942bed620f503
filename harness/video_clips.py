"""Real video files written with OpenCV, for the tests and the video benchmark.

Why: the suite checks what vLLM and the page make of real clips (container, codec, frame rate, rotation)
without shipping binary fixtures. OpenCV's bundled FFmpeg writes mp4v (MPEG-4 Part 2) into .mp4 and MJPG
into .avi on this machine; every frame differs (a moving bar over a gradient), so nothing is deduplicated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

CODECS = {".mp4": "mp4v", ".avi": "MJPG", ".mov": "mp4v", ".mkv": "mp4v"}


def background(width: int, height: int) -> np.ndarray:
    """A BGR gradient: blue grows to the right, green downwards."""
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:, :, 0] = (np.arange(width) * 255 // max(width - 1, 1)).astype(np.uint8)[None, :]
    image[:, :, 1] = (np.arange(height) * 255 // max(height - 1, 1)).astype(np.uint8)[:, None]
    image[:, :, 2] = 96
    return image


def frame(index: int, base: np.ndarray) -> np.ndarray:
    """Frame `index`: the background with a white bar whose position depends on `index`."""
    image = base.copy()
    bar = (index * 7) % max(base.shape[1] - 8, 1)
    image[:, bar : bar + 8] = 255
    return image


def write_clip(
    path: Path,
    *,
    seconds: float,
    fps: float = 10,
    width: int = 320,
    height: int = 240,
    codec: str | None = None,
    offset: int = 0,
) -> Path:
    """Write a clip of `seconds` at `fps` and width x height; the codec follows the suffix unless given.
    `offset` shifts the moving bar, so clips of the same size differ (caches cannot answer)."""
    import cv2

    fourcc = codec or CODECS.get(path.suffix.lower(), "mp4v")
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (width, height))
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {fourcc} into {path.suffix}")
    base = background(width, height)
    try:
        for index in range(max(1, round(seconds * fps))):
            writer.write(frame(index + offset, base))
    finally:
        writer.release()
    return path


def clip_bytes(tmp_dir: Path, name: str = "clip.mp4", **kwargs: float) -> bytes:
    """The bytes of a clip written by `write_clip` into `tmp_dir`."""
    return write_clip(tmp_dir / name, **kwargs).read_bytes()


# ----------------------------------------------------------------------------------- files that go wrong


def rotated(mp4: bytes, degrees: int = 90) -> bytes:
    """The same mp4 with its track's display matrix turned by `degrees` (what phones write for portrait
    video): the pixels stay landscape, players rotate them. Edits the tkhd box in place (version 0)."""
    at = mp4.index(b"tkhd") + 4
    if mp4[at] != 0:
        raise ValueError("only version-0 tkhd boxes are edited")
    one, minus_one, w = 0x00010000, 0xFFFF0000, 0x40000000
    matrices = {
        90: (0, one, 0, minus_one, 0, 0, 0, 0, w),
        180: (minus_one, 0, 0, 0, minus_one, 0, 0, 0, w),
        270: (0, minus_one, 0, one, 0, 0, 0, 0, w),
    }
    matrix = b"".join(value.to_bytes(4, "big") for value in matrices[degrees])
    start = at + 4 + 4 * 5 + 8 + 8  # version/flags, times, track id, reserved, duration; reserved, layer...
    return mp4[:start] + matrix + mp4[start + len(matrix) :]


def unknown_codec(mp4: bytes) -> bytes:
    """The same mp4 with a codec no decoder knows: the sample entry renamed ('zzzz') and its esds object
    type (0x20, MPEG-4 Visual, from which FFmpeg would still guess the decoder) set to an unassigned 0xC0."""
    if mp4.count(b"mp4v") != 1:
        raise ValueError("expected one mp4v sample entry")
    esds = mp4.index(b"esds")
    decoder_config = mp4.index(b"\x04\x80\x80\x80", esds) + 5  # tag 4, 4-byte length, then the type
    if mp4[decoder_config] != 0x20:
        raise ValueError("expected an MPEG-4 Visual decoder config")
    patched = mp4[:decoder_config] + b"\xc0" + mp4[decoder_config + 1 :]
    return patched.replace(b"mp4v", b"zzzz")


def wav_audio(seconds: float = 1.0, rate: int = 8000) -> bytes:
    """An audio-only file (a WAV tone): what a voice memo saved with the wrong name looks like."""
    import io
    import wave

    samples = (np.sin(np.arange(int(seconds * rate)) * 2 * np.pi * 440 / rate) * 12000).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())
    return buffer.getvalue()
