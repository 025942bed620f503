"""PDF pages to images: rendered straight at the image budget (what the page does) vs rendered at 300 dpi and
downscaled to the same size, side by side in one run, on one core; and 4 pages of a 500-page PDF vs all 500.

Run from the repository root:  .venv/bin/python -m benchmarks.pdf_render
Writes benchmarks/results/pdf_render.json.

Both arms end in the same attachment (same size, same encoder), so the difference is the rendering alone.
The two outputs are also compared pixel by pixel (PSNR): rendering at 300 dpi first buys no visible detail
at the size that is sent. Pages: a vector Letter page (text and table lines, tests/helpers/pdfs.py) and an
A4 scan (a picture in a PDF, Pillow's writer). Arms alternate, so load on the shared machine hits both.
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import math
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

import pypdfium2 as pdfium
from PIL import Image, ImageChops, ImageStat

from benchmarks.common import RESULTS_DIR, command_line, machine
from frontend.conversation import DEFAULT_IMAGE_TOKEN_BUDGET, ImageAttachment
from frontend.documents import open_pdf, render_pages
from frontend.images import DOWNSCALE_FILTER, attachment_from_image
from tests.helpers.pdfs import pdf_bytes, scanned_pdf

HIGH_DPI = 300
MAX_BYTES = 1 << 30
POSTER_POINTS = 20_000


def at_budget(data: bytes, budget: int) -> ImageAttachment:
    """The page's path: open, render page 1 at the budget, encode."""
    document = open_pdf(data, "bench.pdf", max_bytes=MAX_BYTES)
    return render_pages(document, [1], room=1, token_budget=budget).images[0]


def via_high_dpi(data: bytes, budget: int, size: tuple[int, int]) -> ImageAttachment:
    """Render page 1 at HIGH_DPI, downscale to `size` (the budget's), encode the same way."""
    pdf = pdfium.PdfDocument(data)
    try:
        page = pdf[0]
        image = page.render(scale=HIGH_DPI / 72).to_pil()
        page.close()
    finally:
        pdf.close()
    image = image.resize(size, DOWNSCALE_FILTER, reducing_gap=3.0)
    return attachment_from_image(image, "bench.pdf", original_size=image.size, notes=[])


def psnr(first: ImageAttachment, second: ImageAttachment) -> float:
    one, two = (Image.open(io.BytesIO(image.data)).convert("L") for image in (first, second))
    mse = ImageStat.Stat(ImageChops.difference(one, two).point(lambda value: value * value)).mean[0]
    return round(10 * math.log10(255**2 / mse), 1) if mse else math.inf


def timed(work: Callable[[], Any]) -> tuple[float, float, Any]:
    started, cpu_started = time.perf_counter(), time.thread_time()
    result = work()
    return (time.perf_counter() - started) * 1000, (time.thread_time() - cpu_started) * 1000, result


def summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1)}


def compare(data: bytes, budget: int, rounds: int, name: str) -> dict[str, Any]:
    """Both arms on page 1 of `data`, alternating which goes first."""
    sample = at_budget(data, budget)
    size = (sample.width, sample.height)
    arms: dict[str, Callable[[], Any]] = {
        "budget": functools.partial(at_budget, data, budget),
        "300dpi": functools.partial(via_high_dpi, data, budget, size),
    }
    wall: dict[str, list[float]] = {arm: [] for arm in arms}
    cpu: dict[str, list[float]] = {arm: [] for arm in arms}
    for round_index in range(rounds):
        order = list(arms) if round_index % 2 == 0 else list(reversed(arms))
        for arm in order:
            elapsed, cpu_ms, _ = timed(arms[arm])
            wall[arm].append(elapsed)
            cpu[arm].append(cpu_ms)
        print(f"\r{name}: round {round_index + 1}/{rounds}", end="", flush=True)
    print()
    pdf = pdfium.PdfDocument(data)
    width_pt, height_pt = pdf[0].get_size()
    pdf.close()
    high_pixels = math.ceil(width_pt * HIGH_DPI / 72) * math.ceil(height_pt * HIGH_DPI / 72)
    return {
        "sent_size": list(size),
        "tokens": sample.tokens,
        "note": sample.notes[0],
        "wall_ms": {arm: summary(values) for arm, values in wall.items()},
        "cpu_ms": {arm: summary(values) for arm, values in cpu.items()},
        "ratio_300dpi_over_budget_wall": round(
            statistics.median(wall["300dpi"]) / statistics.median(wall["budget"]), 2
        ),
        "ratio_300dpi_over_budget_cpu": round(
            statistics.median(cpu["300dpi"]) / statistics.median(cpu["budget"]), 2
        ),
        "bitmap_megapixels": {
            "budget": round(size[0] * size[1] / 1e6, 2),
            "300dpi": round(high_pixels / 1e6, 2),
        },
        "psnr_db_300dpi_vs_budget": psnr(sample, arms["300dpi"]()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--budget", type=int, default=DEFAULT_IMAGE_TOKEN_BUDGET)
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    pages = {
        "letter-vector": pdf_bytes(1),
        "a4-scan": scanned_pdf([["Quarter", "Revenue", "Cost"], ["Q1", "10", "7"], ["Q2", "12", "8"]]),
    }
    results: dict[str, Any] = {
        name: compare(data, args.budget, args.rounds, name) for name, data in pages.items()
    }

    long_pdf = pdf_bytes(500)
    four_ms, _, _ = timed(
        lambda: render_pages(
            open_pdf(long_pdf, "long.pdf", max_bytes=MAX_BYTES), None, room=4, token_budget=args.budget
        )
    )
    all_ms, _, _ = timed(
        lambda: render_pages(
            open_pdf(long_pdf, "long.pdf", max_bytes=MAX_BYTES), None, room=500, token_budget=args.budget
        )
    )
    poster_ms, _, poster = timed(
        lambda: at_budget(pdf_bytes(1, size=(POSTER_POINTS, POSTER_POINTS)), args.budget)
    )
    poster_high = math.ceil(POSTER_POINTS * HIGH_DPI / 72) ** 2
    results["500-pages"] = {
        "first_4_pages_ms": round(four_ms, 1),
        "all_500_pages_ms": round(all_ms, 1),
        "ratio_all_over_4": round(all_ms / four_ms, 1),
    }
    results["20000pt-poster"] = {
        "budget_ms": round(poster_ms, 1),
        "sent_size": [poster.width, poster.height],
        "300dpi_bitmap_gigabytes_not_run": round(poster_high * 3 / 1e9, 1),
    }
    result = {
        "command": command_line("benchmarks.pdf_render"),
        "machine": machine(),
        "budget_tokens": args.budget,
        "rounds": args.rounds,
        "high_dpi": HIGH_DPI,
        "results": results,
    }
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "pdf_render.json").write_text(json.dumps(result, indent=2) + "\n")
    for name in pages:
        page = results[name]
        print(
            f"{name}: at the budget {page['wall_ms']['budget']['median']} ms, via {HIGH_DPI} dpi "
            f"{page['wall_ms']['300dpi']['median']} ms ({page['ratio_300dpi_over_budget_wall']}x), "
            f"PSNR {page['psnr_db_300dpi_vs_budget']} dB"
        )
    print(
        f"500 pages: first 4 in {four_ms:.0f} ms, all 500 in {all_ms:.0f} ms; 20,000-pt poster {poster_ms:.0f} ms "
        f"(at {HIGH_DPI} dpi its bitmap alone would be {results['20000pt-poster']['300dpi_bitmap_gigabytes_not_run']} GB)"
    )


if __name__ == "__main__":
    main()
