"""Prepare an uploaded image for Qwen3-VL: check it, orient it, flatten it, resize it to the budget, re-encode it.

The page sends every image already at the size the server's processor would pick (sides multiples of 32,
pixels within [MIN_PIXELS, budget*32*32]): the server then does not resize it again, the token count shown
is the one spent, and the upload is no bigger than it needs to be. Pillow only, no Streamlit.
"""

from __future__ import annotations

import base64
import io
import logging
import math
from typing import Literal

from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from frontend.conversation import DEFAULT_IMAGE_TOKEN_BUDGET, ImageAttachment

FACTOR = 32  # patch 16 x spatial merge 2: one visual token covers 32x32 pixels
MIN_PIXELS = 65536  # vLLM's default min_pixels for Qwen3-VL (64 tokens)
SERVER_MAX_PIXELS = 16_777_216  # vLLM's default max_pixels for Qwen3-VL (16384 tokens)
MAX_ASPECT_RATIO = 200  # the processor refuses anything more elongated
ACCEPTED_FORMATS: frozenset[str] = frozenset({"JPEG", "PNG", "GIF", "WEBP", "BMP"})  # APNG opens as PNG
# Refused from the header, before decoding (decompression bombs); Pillow warns above the same number.
MAX_SOURCE_PIXELS = Image.MAX_IMAGE_PIXELS
MIN_TOKEN_BUDGET = 64
MAX_TOKEN_BUDGET = 16384
DEFAULT_MAX_BYTES = 20 * 1024 * 1024
JPEG_QUALITY = 90
PNG_CANDIDATE_MAX_PIXELS = 1_000_000  # PNG encoding is ~20x slower than JPEG: only tried on small images

ANIMATED_NOTE = "animated image: only the first frame is sent"
TRANSPARENCY_NOTE = "transparent areas filled with white"

# Resampling. Photos (JPEG) must prepare in <= 50 ms at 12 MP and the draft decode alone takes ~31 ms, so they
# get area averaging (BOX, ~14 ms for 2000x1500 -> 1312x960; BILINEAR ~20 ms, BICUBIC ~33 ms): DCT scaling
# already low-passed them, and the measured difference to BICUBIC is far below the q90 re-encode's own error.
# Other sources (screenshots, text, drawings) are not on that clock and keep BICUBIC's sharper edges.
PHOTO_DOWNSCALE_FILTER = Image.Resampling.BOX
DOWNSCALE_FILTER = Image.Resampling.BICUBIC
UPSCALE_FILTER = Image.Resampling.BICUBIC
REDUCING_GAP = 3.0  # downscales by 3x and more: integer box-reduce first, then filter the rest

_FORMAT_LIST = "JPEG, PNG, GIF, WebP or BMP"
_PILLOW_FORMATS = tuple(sorted(ACCEPTED_FORMATS))
_JPEG_FORMATS = frozenset({"JPEG", "MPO"})  # MPO: JPEG + extra pictures (depth, previews), not animation
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})  # EXIF orientations that swap width and height
_ACCEPTED_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"GIF87a", b"GIF89a", b"BM")
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})

logger = logging.getLogger(__name__)


class ImageRejected(ValueError):
    """An upload that cannot be sent; str(error) is a complete sentence for the page, naming the file."""


def smart_resize(
    height: int, width: int, *, min_pixels: int = MIN_PIXELS, max_pixels: int, factor: int = FACTOR
) -> tuple[int, int]:
    """(height, width) the Qwen2/2.5/3-VL processor resizes an image to: multiples of `factor`, aspect kept,
    pixels within [min_pixels, max_pixels].

    Mirrors transformers' `smart_resize` (what vLLM runs). qwen-vl-utils' copy differs only at the extremes:
    a side under half a factor rounds to one factor there (not 0), and a downscaled side under one factor
    floors to 0 there (not one factor).
    """
    if height < 1 or width < 1:
        raise ValueError(f"image sides must be at least 1 pixel, got {height}x{width} (height x width)")
    if not 0 < min_pixels <= max_pixels:
        raise ValueError(
            f"need 0 < min_pixels <= max_pixels, got min_pixels={min_pixels}, max_pixels={max_pixels}"
        )
    if max(height, width) / min(height, width) > MAX_ASPECT_RATIO:
        raise ValueError(
            f"aspect ratio of {height}x{width} (height x width) is over {MAX_ASPECT_RATIO}:1; crop the image"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def visual_tokens(height: int, width: int) -> int:
    """Visual tokens the server spends on an image of this size (sides already multiples of FACTOR)."""
    return (height // FACTOR) * (width // FACTOR)


def prepare_image(
    data: bytes,
    name: str,
    *,
    token_budget: int = DEFAULT_IMAGE_TOKEN_BUDGET,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> ImageAttachment:
    """The upload as it will be sent, or ImageRejected saying what is wrong with it and what to do.

    Any bytes give either an attachment or ImageRejected: Pillow's own errors are wrapped.
    """
    if not MIN_TOKEN_BUDGET <= token_budget <= MAX_TOKEN_BUDGET:
        raise ValueError(
            f"token_budget must be {MIN_TOKEN_BUDGET}..{MAX_TOKEN_BUDGET} visual tokens, got {token_budget}"
        )
    label = name.strip() or "The image"
    _check_byte_size(data, label, max_bytes)
    try:
        with _open(data, label) as image:
            return _prepare(image, name, label, token_budget)
    except ImageRejected:
        raise
    except MemoryError as error:
        raise ImageRejected(
            f"{label} is too large to decode in the memory available; scale it down and upload it again."
        ) from error
    except Exception as error:  # Pillow raises OSError, ValueError, SyntaxError, ... on bad data
        logger.info("could not decode %s", label, exc_info=True)
        raise ImageRejected(_corrupt_message(label)) from error


_ATTACHMENT_FORMATS = {"image/jpeg": _JPEG_FORMATS, "image/png": frozenset({"PNG"})}


def check_attachment(image: ImageAttachment) -> None:
    """An image that was prepared elsewhere (an imported chat) is what it says: valid base64 of a complete
    JPEG or PNG of its stated size. Raises ImageRejected naming it otherwise."""
    label = image.name.strip() or "An image"
    try:
        data = base64.b64decode(image.data_base64, validate=True)
        with Image.open(io.BytesIO(data), formats=("JPEG", "PNG")) as decoded:
            if decoded.format not in _ATTACHMENT_FORMATS[image.mime_type]:
                raise ImageRejected(
                    f"{label} is {decoded.format}, not the {image.mime_type} it claims to be."
                )
            if decoded.size != (image.width, image.height):
                raise ImageRejected(
                    f"{label} is {decoded.width}x{decoded.height} pixels, not the {image.width}x{image.height} "
                    "it claims to be."
                )
            decoded.load()
    except ImageRejected:
        raise
    except Exception as error:  # binascii.Error, Pillow's OSError, ValueError, ... on bad data
        raise ImageRejected(_corrupt_message(label)) from error


def _check_byte_size(data: bytes, label: str, max_bytes: int) -> None:
    if not data:
        raise ImageRejected(f"{label} is empty (0 bytes); choose the file again.")
    if len(data) > max_bytes:
        size, limit = megabytes(len(data)), megabytes(max_bytes)
        raise ImageRejected(
            f"{label} is {'over ' if size == limit else ''}{size}; the limit is {limit} per image "
            "(FRONTEND_MAX_UPLOAD_MB); scale it down or export it at a lower quality and upload it again."
        )


def megabytes(size: int) -> str:
    return f"{size / 2**20:.1f}".removesuffix(".0") + " MB"


def _open(data: bytes, label: str) -> Image.Image:
    """Open lazily (header only), with only the accepted formats' plugins (no Ghostscript for EPS, etc.)."""
    try:
        return Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise ImageRejected(
            f"{label} has too many pixels to decode safely (over {MAX_SOURCE_PIXELS // 1_000_000} megapixels); "
            "scale it down and upload it again."
        ) from error
    except UnidentifiedImageError as error:
        raise ImageRejected(_unidentified_message(data, label)) from error


def _unidentified_message(data: bytes, label: str) -> str:
    if data.startswith(_ACCEPTED_SIGNATURES) or (data.startswith(b"RIFF") and data[8:12] == b"WEBP"):
        return _corrupt_message(label)
    what = _unsupported_kind(data[:4096]) or "not an image in a supported format"
    return f"{label} is {what}; the page accepts {_FORMAT_LIST} images: convert it to JPEG or PNG."


def _unsupported_kind(head: bytes) -> str | None:
    """Name a common format Pillow will not be asked to read, so the message can say what the file is."""
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            return "a HEIC/HEIF photo"
        return "an AVIF image" if brand in _AVIF_BRANDS else "a video (MP4/MOV)"
    signatures = {
        b"%PDF": "a PDF document",
        b"II*\x00": "a TIFF image",
        b"MM\x00*": "a TIFF image",
        b"8BPS": "a Photoshop (PSD) file",
        b"\xff\x0a": "a JPEG XL image",
        b"\x00\x00\x00\x0cJXL ": "a JPEG XL image",
        b"\x00\x00\x00\x0cjP  ": "a JPEG 2000 image",
        b"\xffO\xffQ": "a JPEG 2000 image",
        b"\x00\x00\x01\x00": "an ICO icon",
    }
    for signature, kind in signatures.items():
        if head.startswith(signature):
            return kind
    return "an SVG drawing" if b"<svg" in head.lower() else None


def _corrupt_message(label: str) -> str:
    return f"{label} is truncated or corrupt; re-export it (or save it again) and upload it again."


def _prepare(image: Image.Image, name: str, label: str, token_budget: int) -> ImageAttachment:
    photo = image.format in _JPEG_FORMATS  # draft decoding, the fast filter, never PNG
    stored_width, stored_height = image.size
    _check_pixel_count(stored_width, stored_height, label)
    notes: list[str] = []
    if not photo and getattr(image, "is_animated", False):
        notes.append(ANIMATED_NOTE)  # frame 0 stays loaded; counting frames would walk a whole GIF
    orientation = _exif_orientation(image)
    transposed = orientation in _TRANSPOSING_ORIENTATIONS
    width, height = (stored_height, stored_width) if transposed else (stored_width, stored_height)
    target_width, target_height = _target_size(width, height, token_budget, label)

    if photo and target_width * target_height < width * height:
        # DCT scaling: libjpeg decodes straight to 1/2, 1/4 or 1/8 size, the smallest still >= the target.
        image.draft("RGB", (target_height, target_width) if transposed else (target_width, target_height))
    image.load()
    if orientation != 1:
        image = ImageOps.exif_transpose(image)
    image = _resize(_to_rgb_or_rgba(image), (target_width, target_height), photo=photo)
    image, flattened = _flatten(image)
    if flattened:
        notes.append(TRANSPARENCY_NOTE)
    if (target_width, target_height) != (width, height):
        notes.append(_resize_note(width, height, target_width, target_height))
    return attachment_from_image(image, name, original_size=(width, height), notes=notes, photo=photo)


def attachment_from_image(
    image: Image.Image,
    name: str,
    *,
    original_size: tuple[int, int],
    notes: list[str],
    photo: bool = False,
) -> ImageAttachment:
    """Encode an RGB image already at its sending size (from `target_size`) as the attachment sent.

    Also the last step for images made here rather than uploaded (PDF pages rendered to the budget)."""
    if image.mode != "RGB":
        image = image.convert("RGB")
    try_png = not photo and image.width * image.height <= PNG_CANDIDATE_MAX_PIXELS
    encoded, mime_type = _encode(image, try_png=try_png)
    return ImageAttachment(
        name=name,
        mime_type=mime_type,
        data_base64=base64.b64encode(encoded).decode("ascii"),
        width=image.width,
        height=image.height,
        original_width=original_size[0],
        original_height=original_size[1],
        tokens=visual_tokens(image.height, image.width),
        notes=notes,
    )


def target_size(width: int, height: int, token_budget: int, label: str) -> tuple[int, int]:
    """(width, height) an image of `width` x `height` is sent at within `token_budget`; ImageRejected
    (naming `label`) for shapes the server refuses."""
    return _target_size(width, height, token_budget, label)


def _target_size(width: int, height: int, token_budget: int, label: str) -> tuple[int, int]:
    """(width, height) to send: smart_resize to the budget, then what the server's own smart_resize makes of
    that, so `tokens` is what it counts. The second step is a no-op except for budgets under ~80 tokens,
    where flooring to the budget can fall under MIN_PIXELS and the server would upscale again."""
    _check_aspect_ratio(width, height, width, height, label)
    budget_height, budget_width = smart_resize(height, width, max_pixels=token_budget * FACTOR * FACTOR)
    # Rounding to multiples of 32 can push a 200:1 image past 200:1; the server would refuse what we send.
    _check_aspect_ratio(budget_width, budget_height, width, height, label)
    target_height, target_width = smart_resize(budget_height, budget_width, max_pixels=SERVER_MAX_PIXELS)
    _check_aspect_ratio(target_width, target_height, width, height, label)
    return target_width, target_height


def _check_pixel_count(width: int, height: int, label: str) -> None:
    if width < 1 or height < 1:
        raise ImageRejected(_corrupt_message(label))
    if width * height > MAX_SOURCE_PIXELS:
        raise ImageRejected(
            f"{label} is {width}x{height} pixels ({width * height / 1e6:.0f} megapixels); the limit is "
            f"{MAX_SOURCE_PIXELS // 1_000_000} megapixels per image: scale it down and upload it again."
        )


def _check_aspect_ratio(
    width: int, height: int, original_width: int, original_height: int, label: str
) -> None:
    if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        raise ImageRejected(
            f"{label} is {original_width}x{original_height} pixels, more elongated than the "
            f"{MAX_ASPECT_RATIO}:1 Qwen3-VL accepts; crop it into shorter pieces and upload those."
        )


def _exif_orientation(image: Image.Image) -> int:
    """EXIF (or XMP) orientation 1..8, read from the header; unreadable metadata counts as upright."""
    try:
        value = image.getexif().get(ExifTags.Base.Orientation, 1)
    except Exception:  # malformed EXIF: viewers show such images as stored, so do we
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def _to_rgb_or_rgba(image: Image.Image) -> Image.Image:
    """RGBA where there is transparency (flattened after resizing), RGB otherwise."""
    if image.mode.startswith("I"):  # 16-bit grey PNGs open as I;16 or I
        image = _sixteen_bit_to_grey(image)
    target = "RGBA" if image.has_transparency_data else "RGB"
    return image if image.mode == target else image.convert(target)


def _sixteen_bit_to_grey(image: Image.Image) -> Image.Image:
    """Scale 0..65535 to 0..255; Pillow's direct conversion clips everything above 255 to white."""
    as_int = image if image.mode == "I" else image.convert("I")
    return as_int.point(lambda value: value / 257).convert("L")


def _resize(image: Image.Image, size: tuple[int, int], *, photo: bool) -> Image.Image:
    if image.size == size:
        return image
    if size[0] * size[1] < image.width * image.height:
        downscale_filter = PHOTO_DOWNSCALE_FILTER if photo else DOWNSCALE_FILTER
        return image.resize(size, downscale_filter, reducing_gap=REDUCING_GAP)
    return image.resize(size, UPSCALE_FILTER)


def _flatten(image: Image.Image) -> tuple[Image.Image, bool]:
    """RGB on white; True when some pixel was actually see-through (an opaque RGBA needs no note)."""
    if image.mode != "RGBA":
        return image, False
    alpha = image.getchannel("A")
    if alpha.getextrema()[0] == 255:
        return image.convert("RGB"), False
    background = Image.new("RGB", image.size, "white")
    background.paste(image, mask=alpha)
    return background, True


def _resize_note(width: int, height: int, target_width: int, target_height: int) -> str:
    direction = "downscaled" if target_width * target_height < width * height else "upscaled"
    return f"{direction} from {width}x{height} to {target_width}x{target_height}"


def _encode(image: Image.Image, *, try_png: bool) -> tuple[bytes, Literal["image/jpeg", "image/png"]]:
    """JPEG; for small non-photo sources also PNG (lossless text and flat colours), whichever is smaller."""
    jpeg = _save(image, "JPEG", quality=JPEG_QUALITY)
    if not try_png:
        return jpeg, "image/jpeg"
    png = _save(image, "PNG")
    return (png, "image/png") if len(png) <= len(jpeg) else (jpeg, "image/jpeg")


def _save(image: Image.Image, image_format: str, **options: int) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()
