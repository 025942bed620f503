"""The benchmark's workload: seeded chat requests with images and videos, identical for every endpoint.

Every request carries images and clips of its own (generated from the seed, the request's index and the
item's position), because vLLM caches both prompt prefixes and processed media: repeating one picture
would measure the caches instead of the model. The same seed gives the same media, prompts and arrival
times, so endpoints benchmarked one after another see exactly the same work. Everything a request sends,
down to the JSON body's bytes, is built here, before any clock starts.
"""

from __future__ import annotations

import base64
import hashlib
import io
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from pydantic import BaseModel, Field

# Qwen's image processor rejects sides under 32 px and aspect ratios above 200 (smart_resize).
MIN_IMAGE_SIDE = 32
MAX_ASPECT_RATIO = 200
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
JPEG_QUALITY = 90  # JPEG encodes ~20x faster than PNG and is what clients usually send
# Generated clips: MPEG-4 Part 2 in an .mp4 (OpenCV's own encoder, no codec libraries needed; vLLM's
# OpenCV and PyAV loaders read it). Phones record 30 fps; 24 keeps generation quick with the same effect
# on the server (it decodes the clip and samples 2 frames a second whatever the recording rate).
VIDEO_FOURCC = "mp4v"
DEFAULT_VIDEO_FPS = 24
MAX_VIDEO_SECONDS = 3600.0

# Filler for prompts of a given length: common words, so a word is about one token for real tokenizers.
_WORD_TEXT = (
    "the of and to in is it that for on with as was at by from this be or are an not have but they his "
    "her which one you all were we there can been has more if will their when who so what out up about "
    "into than them some could time only other new these two may first then do any like my now over such "
    "our man me even most made after also did many before must through back years where much your way "
    "well down should because each just those people how too little state good very make world still own "
    "see men work long get here between both life being under never day same another know while last "
    "might us great old year off come since against go came right used take three light color shape "
    "picture window street tree river table house door car road sky cloud water stone wall paper green "
    "blue red yellow black white left corner middle top bottom small large bright dark near far behind"
)
_WORDS = _WORD_TEXT.split()


class ImageSize(BaseModel):
    """Width and height of generated images, in pixels."""

    width: int = Field(ge=MIN_IMAGE_SIDE, description="pixels")
    height: int = Field(ge=MIN_IMAGE_SIDE, description="pixels")

    @classmethod
    def parse(cls, text: str) -> ImageSize:
        """`WxH`, e.g. 512x512; raises ValueError with what is expected."""
        parts = text.lower().replace("×", "x").split("x")
        if len(parts) != 2 or not all(part.strip().isdigit() for part in parts):
            raise ValueError(f"{text!r} is not WIDTHxHEIGHT in pixels, e.g. 512x512")
        width, height = (int(part) for part in parts)
        if min(width, height) < MIN_IMAGE_SIDE:
            raise ValueError(f"{text!r}: both sides must be at least {MIN_IMAGE_SIDE} px (Qwen's minimum)")
        if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
            raise ValueError(f"{text!r}: aspect ratio above {MAX_ASPECT_RATIO} (Qwen rejects it)")
        return cls(width=width, height=height)

    def __str__(self) -> str:
        return f"{self.width}x{self.height}"


class WorkloadSpec(BaseModel):
    """What every endpoint is asked to do; recorded in the results so a run can be repeated."""

    requests: int = Field(ge=1, description="measured requests per endpoint")
    warmup: int = Field(ge=0, description="requests sent before measuring (own images, not counted)")
    concurrency: int | None = Field(
        default=None, ge=1, description="requests in flight at once (closed loop); None with request_rate"
    )
    request_rate: float | None = Field(
        default=None, gt=0, description="mean arrivals per second (Poisson, seeded); None with concurrency"
    )
    images_per_request: int = Field(ge=0, description="images in each request")
    image_size: ImageSize | None = Field(default=None, description="size of generated images")
    image_dir: str | None = Field(default=None, description="folder the images come from instead")
    videos_per_request: int = Field(default=0, ge=0, description="generated video clips in each request")
    video_seconds: float = Field(
        default=4.0, gt=0, le=MAX_VIDEO_SECONDS, description="length of each generated clip, seconds"
    )
    video_size: ImageSize | None = Field(default=None, description="frame size of generated clips")
    video_fps: int = Field(default=DEFAULT_VIDEO_FPS, ge=1, le=120, description="frame rate of the clips")
    prompt_words: int = Field(ge=1, description="approximate length of the text prompt, in words")
    output_tokens: int = Field(ge=1, description="max_tokens; min_tokens and ignore_eos fix it where allowed")
    seed: int = Field(description="seed for images, prompts and arrival times")

    def describe(self) -> str:
        load = (
            f"{self.request_rate:g} req/s (Poisson)"
            if self.request_rate is not None
            else f"concurrency {self.concurrency}"
        )
        if self.images_per_request == 0:
            images = "text only"
        elif self.image_dir is not None:
            images = f"{self.images_per_request} image(s) from {self.image_dir}"
        else:
            images = f"{self.images_per_request} x {self.image_size} image(s)"
        if self.videos_per_request:
            images += (
                f", {self.videos_per_request} x {self.video_seconds:g} s {self.video_size} "
                f"{self.video_fps} fps video(s)"
            )
        return (
            f"{self.requests} requests, {load}, {images}, ~{self.prompt_words} prompt words, "
            f"{self.output_tokens} output tokens, seed {self.seed}"
        )


@dataclass(frozen=True)
class BenchMedia:
    """An image or a video clip as sent: a base64 data URL."""

    data_url: str
    sha256: str  # of the encoded bytes: lets tests and users see that requests differ


@dataclass(frozen=True)
class BenchRequest:
    """One chat request, ready to send: the payload is built before timing starts."""

    index: int
    prompt: str
    images: tuple[BenchMedia, ...]
    videos: tuple[BenchMedia, ...] = ()

    def messages(self) -> list[dict[str, Any]]:
        """Media first, then the text: the prompt diverges from other requests' right at the media."""
        content: list[dict[str, Any]] = [
            {"type": "image_url", "image_url": {"url": image.data_url}} for image in self.images
        ]
        content += [{"type": "video_url", "video_url": {"url": video.data_url}} for video in self.videos]
        content.append({"type": "text", "text": self.prompt})
        return [{"role": "user", "content": content}]

    def body(self, model: str, output_tokens: int) -> bytes:
        """The streaming chat request as JSON bytes, as the lean client sends it.

        A fixed output length makes endpoints comparable: vLLM honours min_tokens and ignore_eos (other
        servers may ignore them); the usage chunk gives the token counts.
        """
        return orjson.dumps(
            {
                "model": model,
                "messages": self.messages(),
                "max_tokens": output_tokens,
                "stream": True,
                "stream_options": {"include_usage": True},
                "min_tokens": output_tokens,
                "ignore_eos": True,
            }
        )


@dataclass(frozen=True)
class Workload:
    spec: WorkloadSpec
    warmup: tuple[BenchRequest, ...]
    measured: tuple[BenchRequest, ...]
    image_reuse: int  # how many images are sent more than once (0 for generated images)

    def arrival_offsets(self) -> list[float]:
        """Seconds after the start at which each measured request is sent (all 0 in concurrency mode)."""
        if self.spec.request_rate is None:
            return [0.0] * len(self.measured)
        return poisson_offsets(len(self.measured), self.spec.request_rate, self.spec.seed)


def poisson_offsets(count: int, rate: float, seed: int) -> list[float]:
    """Cumulative exponential gaps with mean 1/rate: a Poisson arrival process, reproducible by seed."""
    rng = random.Random(f"{seed}/arrivals")
    offsets, now = [], 0.0
    for _ in range(count):
        offsets.append(now)
        now += rng.expovariate(rate)
    return offsets


def prompt_text(words: int, rng: random.Random, index: int) -> str:
    """An instruction plus seeded filler words, about `words` words long in total."""
    head = f"Request {index}. Describe the picture in detail, then continue the list:"
    filler = max(0, words - len(head.split()))
    return " ".join([head, *rng.choices(_WORDS, k=filler)])


def generated_image(size: ImageSize, seed: str) -> bytes:
    """A photo-like JPEG: smooth seeded colour fields plus shapes, unique per seed string.

    Smooth content keeps the JPEG near the size of a real photo of the same dimensions (pure noise would
    be several times larger and slow every upload); the visual token count depends only on the size.
    """
    from PIL import Image, ImageDraw

    rng = random.Random(seed)
    grid_w, grid_h = max(2, size.width // 64), max(2, size.height // 64)
    coarse = Image.frombytes("RGB", (grid_w, grid_h), rng.randbytes(grid_w * grid_h * 3))
    image = coarse.resize((size.width, size.height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x0, y0 = rng.randrange(size.width), rng.randrange(size.height)
        x1, y1 = x0 + rng.randrange(8, size.width // 2 + 9), y0 + rng.randrange(8, size.height // 2 + 9)
        colour = tuple(rng.randrange(256) for _ in range(3))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)((x0, y0, x1, y1), fill=colour)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()


def generated_video(size: ImageSize, seconds: float, fps: int, seed: str, workdir: Path) -> bytes:
    """An mp4 clip with seeded moving shapes on a drifting background, unique per seed string.

    Motion matters: a still clip compresses to almost nothing and decodes faster than any real video.
    OpenCV writes only to files, so the clip passes through `workdir`.
    """
    try:
        import cv2
        import numpy as np
    except ImportError as exc:
        raise ValueError(f"generated videos need OpenCV (pip install opencv-python-headless): {exc}") from exc
    rng = random.Random(seed)
    frames = max(1, round(seconds * fps))
    path = workdir / f"{hashlib.sha256(seed.encode()).hexdigest()[:16]}.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*VIDEO_FOURCC), fps, (size.width, size.height))
    if not writer.isOpened():
        raise ValueError(f"OpenCV cannot write {VIDEO_FOURCC} video here")
    grid_w, grid_h = max(2, size.width // 64), max(2, size.height // 64)
    coarse = np.frombuffer(rng.randbytes(grid_w * grid_h * 3), np.uint8).reshape(grid_h, grid_w, 3)
    background = cv2.resize(coarse, (size.width, size.height), interpolation=cv2.INTER_CUBIC)
    shapes = [
        (
            rng.randrange(size.width),
            rng.randrange(size.height),
            rng.uniform(-4, 4),
            rng.uniform(-4, 4),
            rng.randrange(8, max(9, min(size.width, size.height) // 4)),
            tuple(rng.randrange(256) for _ in range(3)),
        )
        for _ in range(4)
    ]
    try:
        for frame_index in range(frames):
            frame = np.roll(background, frame_index * 2, axis=1)
            for x, y, dx, dy, radius, colour in shapes:
                centre = (int(x + dx * frame_index) % size.width, int(y + dy * frame_index) % size.height)
                cv2.circle(frame, centre, radius, colour, thickness=-1)
            writer.write(frame)
    finally:
        writer.release()
    try:
        return path.read_bytes()
    finally:
        path.unlink(missing_ok=True)


def _data_url(data: bytes, mime: str) -> BenchMedia:
    encoded = base64.b64encode(data).decode("ascii")
    return BenchMedia(data_url=f"data:{mime};base64,{encoded}", sha256=hashlib.sha256(data).hexdigest())


def image_files(folder: Path) -> list[Path]:
    """Image files in `folder` (by suffix), sorted by name so runs are reproducible."""
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def _file_image(path: Path) -> BenchMedia:
    """A user's image sent as it is on disk (no re-encoding), with the type Pillow detects."""
    from PIL import Image

    data = path.read_bytes()
    try:
        with Image.open(io.BytesIO(data)) as image:
            mime = Image.MIME.get(image.format or "", "image/jpeg")
    except OSError as exc:
        raise ValueError(f"{path}: not an image Pillow can read ({exc})") from exc
    return _data_url(data, mime)


def _videos(spec: WorkloadSpec, index: int, workdir: Path) -> tuple[BenchMedia, ...]:
    if not spec.videos_per_request:
        return ()
    assert spec.video_size is not None
    return tuple(
        _data_url(
            generated_video(
                spec.video_size, spec.video_seconds, spec.video_fps, f"{spec.seed}/video/{index}/{p}", workdir
            ),
            "video/mp4",
        )
        for p in range(spec.videos_per_request)
    )


def build_workload(spec: WorkloadSpec, on_request: Callable[[], None] = lambda: None) -> Workload:
    """All requests of a run, warm-up first; images come from the seed or from `spec.image_dir`, videos
    from the seed. `on_request` is called after each request is built (a progress bar).

    Raises ValueError when the image folder has no images or one that cannot be read, or when videos
    cannot be generated.
    """
    with tempfile.TemporaryDirectory(prefix="serve-bench-") as workdir:
        return _build_workload(spec, on_request, Path(workdir))


def _build_workload(spec: WorkloadSpec, on_request: Callable[[], None], workdir: Path) -> Workload:
    total = spec.warmup + spec.requests
    needed = total * spec.images_per_request
    files: list[Path] = []
    if spec.image_dir is not None and needed:
        files = image_files(Path(spec.image_dir))
        if not files:
            raise ValueError(f"{spec.image_dir}: no images ({', '.join(IMAGE_SUFFIXES)})")
        # Shuffled by seed, so different seeds pick different images first.
        random.Random(f"{spec.seed}/files").shuffle(files)
    cache: dict[Path, BenchMedia] = {}
    requests = []
    for index in range(total):
        rng = random.Random(f"{spec.seed}/prompt/{index}")
        images = []
        for position in range(spec.images_per_request):
            if files:
                path = files[(index * spec.images_per_request + position) % len(files)]
                if path not in cache:
                    cache[path] = _file_image(path)
                images.append(cache[path])
            else:
                assert spec.image_size is not None
                data = generated_image(spec.image_size, f"{spec.seed}/image/{index}/{position}")
                images.append(_data_url(data, "image/jpeg"))
        requests.append(
            BenchRequest(
                index=index,
                prompt=prompt_text(spec.prompt_words, rng, index),
                images=tuple(images),
                videos=_videos(spec, index, workdir),
            )
        )
        on_request()
    reuse = max(0, needed - len(files)) if files else 0
    return Workload(
        spec=spec,
        warmup=tuple(requests[: spec.warmup]),
        measured=tuple(requests[spec.warmup :]),
        image_reuse=reuse,
    )
