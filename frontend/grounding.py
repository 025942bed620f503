"""Qwen3-VL grounding answers: find the boxes and points in the text, and draw them on the image.

Asked to locate things, Qwen3-VL answers with JSON such as `[{"bbox_2d": [x1, y1, x2, y2], "label": "cat"}]`
or `{"point_2d": [x, y], "label": "..."}`, coordinates relative to the input image on a 0..1000 grid. The JSON
comes fenced or bare, alone or inside prose, sometimes cut short by max_tokens or slightly malformed, so the
parser takes every well-formed JSON value it can find and falls back to a pattern match when there is none.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Iterator, Sequence
from typing import Any

from PIL import Image, ImageDraw, ImageFont, ImageOps
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

GRID = 1000  # Qwen3-VL's relative coordinate range, both axes
BOX_KEY = "bbox_2d"
POINT_KEY = "point_2d"
LABEL_KEYS = ("label", "text_content")  # text_content: Qwen3-VL's key in text-spotting answers

# Distinct on white and on photos (Kelly's / Tableau-like), in the order labels first appear.
COLOURS: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75),
    (60, 180, 75),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 200, 210),
    (240, 50, 230),
    (150, 150, 0),
    (0, 128, 128),
    (170, 110, 40),
    (128, 0, 0),
    (0, 0, 128),
)
UNLABELLED_COLOUR = (255, 0, 255)

_JSON = json.JSONDecoder()
MAX_FAILED_STARTS = 1000  # bounds the work on pathological text ("[[[[..."); real answers fail a handful
_JSON_START = re.compile(r"[\[{]")
# Fallback for JSON that does not parse (single quotes, unquoted keys, a missing comma): a coordinate list.
_COORDINATES = re.compile(r"""["']?(bbox_2d|point_2d)["']?\s*:\s*\[([^\[\]]*)\]""")
_LABEL = re.compile(r"""["']?(?:label|text_content)["']?\s*:\s*(?:"([^"]*)"|'([^']*)')""")


class GroundingMark(BaseModel):
    """One located thing: a box, a point or both, on the 0..1000 grid of the image the model saw."""

    model_config = ConfigDict(frozen=True)

    label: str | None = Field(default=None, description="What the model says is there; None when unlabelled.")
    box: tuple[float, float, float, float] | None = Field(
        default=None, description="x1, y1, x2, y2 on the 0..1000 grid, clamped, with x1 <= x2 and y1 <= y2."
    )
    point: tuple[float, float] | None = Field(default=None, description="x, y on the 0..1000 grid, clamped.")

    @field_validator("box")
    @classmethod
    def _normalise_box(cls, box: tuple[float, float, float, float] | None) -> tuple[float, ...] | None:
        if box is None:
            return None
        x1, y1, x2, y2 = (_on_grid(value) for value in box)
        return min(x1, x2), min(y1, y2), max(x1, x2), max(y1, y2)

    @field_validator("point")
    @classmethod
    def _clamp_point(cls, point: tuple[float, float] | None) -> tuple[float, ...] | None:
        return None if point is None else tuple(_on_grid(value) for value in point)

    @field_validator("label")
    @classmethod
    def _blank_label_is_none(cls, label: str | None) -> str | None:
        return (label or "").strip() or None

    @model_validator(mode="after")
    def _has_coordinates(self) -> GroundingMark:
        if self.box is None and self.point is None:
            raise ValueError("a grounding mark needs a box or a point")
        return self


def _on_grid(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError(f"coordinates must be finite numbers, got {value}")
    return min(max(float(value), 0.0), float(GRID))


def parse_grounding(text: str) -> list[GroundingMark]:
    """Every box and point in a model answer, in order; [] when there is none. Never raises."""
    if BOX_KEY not in text and POINT_KEY not in text:
        return []  # most answers: no need to look for JSON at all
    try:
        marks = [mark for value in _json_values(text) for mark in _marks_in(value)]
        return marks or _marks_by_pattern(text)
    except Exception:  # a parser for untrusted text must not take the page down
        return []


def _json_values(text: str) -> Iterator[Any]:
    """Each JSON array or object in the text, left to right; what does not parse is skipped character-wise.

    This finds fenced JSON, bare JSON and JSON inside prose alike, and, in a list cut short, the objects
    that did arrive whole.
    """
    position, failures = 0, 0
    while failures < MAX_FAILED_STARTS and (match := _JSON_START.search(text, position)):
        try:
            value, end = _JSON.raw_decode(text, match.start())
        except (ValueError, RecursionError):
            position, failures = match.start() + 1, failures + 1
            continue
        yield value
        position = end


def _marks_in(value: Any) -> Iterator[GroundingMark]:
    """Marks in a decoded JSON value: objects with bbox_2d / point_2d, wherever they are nested."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(reversed(item))
        elif isinstance(item, dict):
            if BOX_KEY in item or POINT_KEY in item:
                mark = _mark(item.get(BOX_KEY), item.get(POINT_KEY), _label_of(item))
                if mark is not None:
                    yield mark
            else:
                pending.extend(reversed(list(item.values())))


def _label_of(item: dict[str, Any]) -> str | None:
    for key in LABEL_KEYS:
        value = item.get(key)
        if isinstance(value, str):
            return value
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
    return None


def _mark(box: Any, point: Any, label: str | None) -> GroundingMark | None:
    """A mark from raw values, or None when neither coordinate list is usable (wrong length, not numbers)."""
    box_values = _numbers(box, 4)
    point_values = _numbers(point, 2)
    if box_values is None and point_values is None:
        return None
    try:
        return GroundingMark(label=label, box=box_values, point=point_values)
    except ValidationError:
        return None


def _numbers(value: Any, count: int) -> tuple[float, ...] | None:
    if not isinstance(value, list | tuple) or len(value) != count:
        return None
    numbers = []
    for item in value:
        if isinstance(item, bool):
            return None
        try:
            number = float(item)
        except (TypeError, ValueError, OverflowError):  # OverflowError: a 400-digit JSON integer
            return None
        if not math.isfinite(number):
            return None
        numbers.append(number)
    return tuple(numbers)


def _marks_by_pattern(text: str) -> list[GroundingMark]:
    """Last resort for malformed JSON: coordinate lists after bbox_2d / point_2d, labels from the same object."""
    marks = []
    for match in _COORDINATES.finditer(text):
        parts = [part.strip().strip("\"'") for part in match.group(2).split(",")]
        values = _numbers(parts, 4 if match.group(1) == BOX_KEY else 2)
        if values is None:
            continue
        label = _label_near(text, match.start(), match.end())
        mark = _mark(values, None, label) if match.group(1) == BOX_KEY else _mark(None, values, label)
        if mark is not None:
            marks.append(mark)
    return marks


def _label_near(text: str, start: int, end: int) -> str | None:
    """The label inside the same {...} as the coordinates, if the braces can be found."""
    opening = text.rfind("{", 0, start)
    closing = text.find("}", end)
    if opening < 0 or closing < 0 or "}" in text[opening:start]:
        return None
    found = _LABEL.search(text, opening, closing)
    return None if found is None else (found.group(1) if found.group(1) is not None else found.group(2))


def draw_grounding(image: bytes | Image.Image, marks: Sequence[GroundingMark]) -> Image.Image:
    """A new RGB image with the marks drawn: one colour per label, labels on filled tags, lines scaled.

    Raises ValueError when `image` is bytes that are not an image.
    """
    canvas = _rgb_copy(image)
    width, height = canvas.size
    line = max(2, round(min(width, height) / 200))
    font = _font(max(12, round(min(width, height) / 40)))
    colours = _colours_by_label(marks)
    draw = ImageDraw.Draw(canvas)
    tags: list[tuple[tuple[float, float], str, tuple[int, int, int]]] = []
    for mark in marks:
        colour = colours.get(mark.label, UNLABELLED_COLOUR)
        anchor = None
        if mark.box is not None:
            x1, y1, x2, y2 = _to_pixels(mark.box, width, height)
            draw.rectangle((x1, y1, x2, y2), outline=colour, width=line)
            anchor = (x1, y1)
        if mark.point is not None:
            x, y = _to_pixels(mark.point, width, height)
            radius = line * 2 + 1
            draw.ellipse(
                (x - radius, y - radius, x + radius, y + radius), fill=colour, outline="white", width=1
            )
            anchor = anchor or (x + radius, y - radius)
        if mark.label and anchor is not None:
            tags.append((anchor, mark.label, colour))
    for anchor, label, colour in tags:  # after all outlines, so no line crosses a label
        _draw_tag(draw, font, anchor, label, colour, canvas.size)
    return canvas


def _rgb_copy(image: bytes | Image.Image) -> Image.Image:
    if isinstance(image, bytes | bytearray):
        try:
            with Image.open(io.BytesIO(image)) as opened:
                opened.load()
                image = ImageOps.exif_transpose(opened)
        except Exception as error:
            raise ValueError(f"draw_grounding: the image bytes could not be decoded ({error})") from error
    if image.has_transparency_data:
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")  # convert copies even when the mode is already RGB


def _colours_by_label(marks: Sequence[GroundingMark]) -> dict[str | None, tuple[int, int, int]]:
    """Labels in order of first appearance get the palette in order, so the first 12 never share a colour."""
    colours: dict[str | None, tuple[int, int, int]] = {}
    for mark in marks:
        if mark.label is not None and mark.label not in colours:
            colours[mark.label] = COLOURS[len(colours) % len(COLOURS)]
    return colours


def _to_pixels(coordinates: tuple[float, ...], width: int, height: int) -> tuple[int, ...]:
    """Grid (x, y, x, y, ...) to pixels; 1000 maps to the last pixel, not one past it."""
    sizes = (width, height) * (len(coordinates) // 2)
    return tuple(
        min(round(value * size / GRID), size - 1) for value, size in zip(coordinates, sizes, strict=True)
    )


def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except (ImportError, OSError):  # Pillow built without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _draw_tag(
    draw: ImageDraw.ImageDraw,
    font: ImageFont.FreeTypeFont | ImageFont.ImageFont,
    anchor: tuple[float, float],
    label: str,
    colour: tuple[int, int, int],
    size: tuple[int, int],
) -> None:
    """The label on a filled tag in its mark's colour: above the anchor, or below it at the top edge."""
    left, top, right, bottom = draw.textbbox((0, 0), label, font=font)
    pad = max(2, (bottom - top) // 5)
    tag_width, tag_height = right - left + 2 * pad, bottom - top + 2 * pad
    x = min(max(anchor[0], 0), max(size[0] - tag_width, 0))
    y = anchor[1] - tag_height if anchor[1] - tag_height >= 0 else anchor[1]
    draw.rectangle((x, y, x + tag_width, y + tag_height), fill=colour)
    ink = (0, 0, 0) if _luminance(colour) > 140 else (255, 255, 255)
    draw.text((x + pad - left, y + pad - top), label, fill=ink, font=font)


def _luminance(colour: tuple[int, int, int]) -> float:
    red, green, blue = colour
    return 0.299 * red + 0.587 * green + 0.114 * blue
