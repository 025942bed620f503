"""Image preparation cost: a 12-megapixel JPEG through the page's `prepare_image`, on one core.

Run from the repository root:  .venv/bin/python -m benchmarks.image_prep
Writes benchmarks/results/image_prep.json. Target: median <= 50 ms at the default budget (1280 tokens).

The photo is synthetic but photo-like (gradients, shapes, sensor-like grain; ~3 MB at quality 90, like a
phone's 12 MP JPEG); each run gets a new file so nothing is cached. The process is pinned to one CPU.
Side by side on every file, in rotating order: the current code and variants of its resampling knobs
(`frontend.images` REDUCING_GAP, PHOTO_DOWNSCALE_FILTER), each with its mean absolute difference to the
current output; and the three stages (draft decode, resize, encode) timed on their own.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import statistics
import time
from typing import Any

from PIL import Image, ImageDraw, ImageFilter

import frontend.images as images
from benchmarks.common import RESULTS_DIR, command_line, machine
from frontend.conversation import DEFAULT_IMAGE_TOKEN_BUDGET
from frontend.images import prepare_image

TARGET_MEDIAN_MS = 50.0
SIZE = (4000, 3000)


def photo_like_jpeg(seed: int, size: tuple[int, int] = SIZE, quality: int = 90) -> bytes:
    """A 12 MP JPEG with what photos have: gradients, edges, texture. Built at 1/4 scale, then enlarged
    with noise on top, so building it does not dominate the run time."""
    rng = random.Random(seed)
    small = (size[0] // 4, size[1] // 4)
    image = Image.linear_gradient("L").resize(small).convert("RGB")
    draw = ImageDraw.Draw(image)
    for _ in range(40):
        x, y = rng.randrange(small[0]), rng.randrange(small[1])
        radius = rng.randrange(20, 200)
        colour = tuple(rng.randrange(256) for _ in range(3))
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(3)).resize(size, Image.Resampling.BILINEAR)
    # Sensor-like grain brings the file to ~3 MB, what a phone writes for 12 MP at this quality: JPEG
    # decoding time grows with the file size, so a smooth (small) file would flatter the result.
    noise = Image.effect_noise(size, 30).convert("RGB")
    image = Image.blend(image, noise, 0.2)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


# Variants of the resampling knobs, tried against the current settings (the first arm).
ARMS: dict[str, dict[str, Any]] = {
    "current (BOX, reducing_gap 3)": {},
    "BOX, box-reduce from 2x (reducing_gap 1)": {"REDUCING_GAP": 1.0},
    "BOX, no reduce step": {"REDUCING_GAP": None},
    "BILINEAR, reducing_gap 3": {"PHOTO_DOWNSCALE_FILTER": Image.Resampling.BILINEAR},
}


def _pixels(data_base64: str) -> Any:
    import base64

    import numpy as np

    with Image.open(io.BytesIO(base64.b64decode(data_base64))) as image:
        return np.asarray(image.convert("RGB"), dtype=np.float32)


def compare_arms(photos: list[bytes], budget: int) -> dict[str, Any]:
    """Each arm on every photo, the order rotating per photo; CPU ms and difference to the current output."""
    knobs = {name: getattr(images, name) for name in ("REDUCING_GAP", "PHOTO_DOWNSCALE_FILTER")}
    names = list(ARMS)
    cpu: dict[str, list[float]] = {name: [] for name in names}
    diff: dict[str, list[float]] = {name: [] for name in names}
    for run, data in enumerate(photos):
        outputs = {}
        for name in names[run % len(names) :] + names[: run % len(names)]:
            for knob, value in {**knobs, **ARMS[name]}.items():
                setattr(images, knob, value)
            started = time.thread_time()
            outputs[name] = prepare_image(data, "photo.jpg", token_budget=budget)
            cpu[name].append((time.thread_time() - started) * 1000)
        for knob, value in knobs.items():
            setattr(images, knob, value)
        reference = _pixels(outputs[names[0]].data_base64)
        for name in names:
            diff[name].append(float(abs(_pixels(outputs[name].data_base64) - reference).mean()))
    current = statistics.median(cpu[names[0]])
    return {
        name: {
            "cpu_median_ms": round(statistics.median(cpu[name]), 1),
            "vs_current": round(statistics.median(cpu[name]) / current, 3),
            "mean_abs_diff_to_current": round(statistics.fmean(diff[name]), 3),
        }
        for name in names
    }


def stages(photos: list[bytes], budget: int) -> dict[str, float]:
    """Median CPU ms of the draft decode, the resize and the encode, each timed on its own."""
    times: dict[str, list[float]] = {"decode (draft, half size)": [], "resize": [], "encode (JPEG q90)": []}
    target = prepare_image(photos[0], "photo.jpg", token_budget=budget)
    size = (target.width, target.height)
    for data in photos:
        started = time.thread_time()
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", size)
            image.load()
            decoded = image.copy()
        times["decode (draft, half size)"].append((time.thread_time() - started) * 1000)
        started = time.thread_time()
        resized = decoded.resize(size, images.PHOTO_DOWNSCALE_FILTER, reducing_gap=images.REDUCING_GAP)
        times["resize"].append((time.thread_time() - started) * 1000)
        started = time.thread_time()
        resized.save(io.BytesIO(), "JPEG", quality=images.JPEG_QUALITY)
        times["encode (JPEG q90)"].append((time.thread_time() - started) * 1000)
    return {name: round(statistics.median(values), 1) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--budget", type=int, default=DEFAULT_IMAGE_TOKEN_BUDGET)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    timings_ms: list[float] = []
    cpu_ms: list[float] = []  # the thread's CPU time: what the work costs, whatever else runs on the machine
    sample: dict[str, Any] = {}
    for run in range(args.runs):
        data = photo_like_jpeg(seed=run)
        started, cpu_started = time.perf_counter(), time.thread_time()
        prepared = prepare_image(data, f"photo-{run}.jpg", token_budget=args.budget)
        timings_ms.append((time.perf_counter() - started) * 1000)
        cpu_ms.append((time.thread_time() - cpu_started) * 1000)
        sample = {
            "input_bytes": len(data),
            "input_size": list(SIZE),
            "output_size": [prepared.width, prepared.height],
            "output_bytes": len(prepared.data),
            "tokens": prepared.tokens,
        }
        print(f"\rrun {run + 1}/{args.runs}: {timings_ms[-1]:.1f} ms", end="", flush=True)
    print("\nside by side: resampling variants, stage split")
    photos = [photo_like_jpeg(seed=1000 + run) for run in range(args.runs)]
    arms = compare_arms(photos, args.budget)
    split = stages(photos, args.budget)
    median = statistics.median(timings_ms)
    result = {
        "command": command_line("benchmarks.image_prep"),
        "machine": machine(),
        "budget_tokens": args.budget,
        "runs": args.runs,
        "example": sample,
        "median_ms": round(median, 1),
        "p90_ms": round(statistics.quantiles(timings_ms, n=10)[-1], 1),
        "min_ms": round(min(timings_ms), 1),
        "cpu_median_ms": round(statistics.median(cpu_ms), 1),
        "target_median_ms": TARGET_MEDIAN_MS,
        "target_met": median <= TARGET_MEDIAN_MS,
        "timings_ms": [round(value, 2) for value in timings_ms],
        "arms_side_by_side": arms,
        "stages_cpu_median_ms": split,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "image_prep.json").write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"\n12 MP JPEG -> {sample['output_size'][0]}x{sample['output_size'][1]} ({sample['tokens']} tokens): "
        f"median {median:.1f} ms on one core, {statistics.median(cpu_ms):.1f} ms of CPU "
        f"(target <= {TARGET_MEDIAN_MS:g} ms)"
    )
    for name, arm in arms.items():
        print(
            f"{name:>42}: {arm['cpu_median_ms']} ms CPU ({arm['vs_current']}x), diff {arm['mean_abs_diff_to_current']}"
        )
    print("stages: " + ", ".join(f"{name} {value} ms" for name, value in split.items()))


if __name__ == "__main__":
    main()
