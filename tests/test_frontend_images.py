"""Image preparation for Qwen3-VL: every test image is built in memory with Pillow (no binary fixtures)."""

from __future__ import annotations

import base64
import io
import random
import struct
import warnings
import zlib
from collections.abc import Callable

import pytest
from PIL import ExifTags, Image, ImageDraw, JpegImagePlugin, PngImagePlugin

from frontend.images import (
    ACCEPTED_FORMATS,
    ANIMATED_NOTE,
    FACTOR,
    MAX_SOURCE_PIXELS,
    MIN_PIXELS,
    SERVER_MAX_PIXELS,
    TRANSPARENCY_NOTE,
    ImageRejected,
    prepare_image,
    smart_resize,
    visual_tokens,
)

RED = (255, 0, 0)
BLUE = (0, 0, 255)
WHITE = (255, 255, 255)


def encode(image: Image.Image, image_format: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def sent_image(attachment) -> Image.Image:
    """What the server will decode: the data URL's bytes."""
    header, payload = attachment.data_url.split(",", 1)
    assert header == f"data:{attachment.mime_type};base64"
    image = Image.open(io.BytesIO(base64.b64decode(payload)))
    image.load()
    return image


def halves(
    size: tuple[int, int], left: tuple[int, ...], right: tuple[int, ...], mode: str = "RGB"
) -> Image.Image:
    image = Image.new(mode, size, left)
    ImageDraw.Draw(image).rectangle((size[0] // 2, 0, size[0], size[1]), fill=right)
    return image


def close_to(pixel: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel[:3], expected, strict=True))


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, followed by an empty IDAT: decoding it would fail as truncated."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"") + chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def photo_12mp() -> Image.Image:
    """4000x3000, red left half, blue right half: colours show whether the content survived orientation."""
    return halves((4000, 3000), RED, BLUE)


# --- smart_resize and token counts -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("height", "width", "budget", "expected"),
    [
        (3000, 4000, 1280, (960, 1312)),  # downscale: floor(3000/3.0258/32)*32, floor(4000/3.0258/32)*32
        (4000, 3000, 1280, (1312, 960)),
        (1080, 1920, 1280, (832, 1504)),
        (960, 1312, 1280, (960, 1312)),  # already a fixed point
        (1000, 1000, 1280, (992, 992)),  # rounding only: round(31.25) = 31
        (480, 640, 1280, (480, 640)),
        (20, 20, 1280, (256, 256)),  # upscale: ceil(20 * 12.8 / 32) * 32
        (1, 1, 1280, (256, 256)),
        (10, 100, 1280, (96, 832)),
        (3000, 4000, 64, (192, 288)),  # 54 tokens: transformers' rule floors under min_pixels here
        (15, 3000, 1280, (32, 3648)),  # round(15/32) = 0 -> min branch (qwen-vl-utils would give 32x3008)
        (3000, 4000, 16384, (3008, 4000)),
    ],
)
def test_smart_resize_known_values(height: int, width: int, budget: int, expected: tuple[int, int]) -> None:
    assert smart_resize(height, width, max_pixels=budget * FACTOR * FACTOR) == expected


def test_smart_resize_properties() -> None:
    for height in (1, 7, 31, 33, 100, 479, 720, 1081, 2999, 6000):
        for width in (1, 9, 32, 64, 333, 1024, 1920, 4032):
            if max(height, width) / min(height, width) > 200:
                continue
            for budget in (256, 1280, 16384):
                h, w = smart_resize(height, width, max_pixels=budget * FACTOR * FACTOR)
                assert h % FACTOR == 0 and w % FACTOR == 0 and h >= FACTOR and w >= FACTOR
                assert h * w >= MIN_PIXELS, (height, width, budget)
                # fixed point: the server, resizing what we send, leaves it alone
                assert smart_resize(h, w, max_pixels=SERVER_MAX_PIXELS) == (h, w)


def test_smart_resize_refuses_extreme_aspect_and_bad_bounds() -> None:
    with pytest.raises(ValueError, match="200:1"):
        smart_resize(10, 3000, max_pixels=1280 * 1024)
    assert smart_resize(10, 2000, max_pixels=1280 * 1024)  # exactly 200:1 is allowed
    with pytest.raises(ValueError, match="min_pixels"):
        smart_resize(100, 100, min_pixels=2048, max_pixels=1024)
    with pytest.raises(ValueError, match="at least 1 pixel"):
        smart_resize(0, 100, max_pixels=1024 * 1024)


def test_visual_tokens_is_one_per_32x32() -> None:
    assert visual_tokens(960, 1312) == 30 * 41 == 1230
    assert visual_tokens(256, 256) == 64
    assert visual_tokens(32, 32) == 1


# --- formats ----------------------------------------------------------------------------------------------


def test_accepted_formats_are_pillow_names() -> None:
    assert frozenset({"JPEG", "PNG", "GIF", "WEBP", "BMP"}) == ACCEPTED_FORMATS


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "GIF", "WEBP", "BMP"])
def test_each_accepted_format_is_prepared(image_format: str) -> None:
    data = encode(halves((640, 480), RED, BLUE), image_format)
    attachment = prepare_image(data, f"pic.{image_format.lower()}")
    assert (attachment.width, attachment.height) == (640, 480)
    assert (attachment.original_width, attachment.original_height) == (640, 480)
    assert attachment.tokens == visual_tokens(480, 640) == 300
    assert attachment.notes == []
    sent = sent_image(attachment)
    assert sent.size == (640, 480)
    assert sent.format == {"image/jpeg": "JPEG", "image/png": "PNG"}[attachment.mime_type]
    assert close_to(sent.convert("RGB").getpixel((100, 240)), RED)
    assert close_to(sent.convert("RGB").getpixel((540, 240)), BLUE)


def test_format_comes_from_the_bytes_not_the_name() -> None:
    attachment = prepare_image(encode(halves((640, 480), RED, BLUE), "PNG"), "really-a-png.jpg")
    assert attachment.name == "really-a-png.jpg"
    assert attachment.width == 640


def test_jpeg_source_is_sent_as_jpeg() -> None:
    attachment = prepare_image(encode(Image.new("RGB", (640, 480), RED), "JPEG"), "flat.jpg")
    assert attachment.mime_type == "image/jpeg"


def test_small_flat_png_is_sent_lossless_as_png() -> None:
    """Screenshots and text: PNG is smaller than JPEG for flat colours and keeps every pixel exact."""
    image = halves((640, 480), (10, 20, 30), (200, 210, 220))
    ImageDraw.Draw(image).text((20, 20), "Total: 42.00 EUR", fill=(255, 255, 0))
    attachment = prepare_image(encode(image, "PNG"), "screenshot.png")
    assert attachment.mime_type == "image/png"
    assert sent_image(attachment).convert("RGB").tobytes() == image.tobytes()


def test_mpo_is_treated_as_a_still_jpeg() -> None:
    """Phones write MPO (JPEG + depth map or preview); its second picture is not an animation frame."""
    first, second = Image.new("RGB", (640, 480), RED), Image.new("RGB", (640, 480), BLUE)
    data = encode(first, "MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    attachment = prepare_image(data, "stereo.jpg")
    assert attachment.notes == []
    assert attachment.mime_type == "image/jpeg"
    assert close_to(sent_image(attachment).getpixel((320, 240)), RED)


# --- orientation, modes, transparency ---------------------------------------------------------------------


def test_exif_orientation_6_makes_a_landscape_jpeg_portrait() -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6  # stored landscape, shown rotated 90 degrees clockwise
    data = encode(halves((640, 480), RED, BLUE), "JPEG", exif=exif)
    attachment = prepare_image(data, "phone.jpg")
    assert (attachment.original_width, attachment.original_height) == (480, 640)
    assert (attachment.width, attachment.height) == (480, 640)
    sent = sent_image(attachment)
    assert sent.size == (480, 640)
    # rotating clockwise puts the stored left half (red) on top
    assert close_to(sent.getpixel((240, 100)), RED)
    assert close_to(sent.getpixel((240, 540)), BLUE)
    assert ExifTags.Base.Orientation not in sent.getexif()  # nobody rotates it a second time


def test_exif_orientation_applies_to_a_draft_decoded_12mp_jpeg(photo_12mp: Image.Image) -> None:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 8  # shown rotated 90 degrees counter-clockwise
    attachment = prepare_image(encode(photo_12mp, "JPEG", quality=90, exif=exif), "tall.jpg")
    assert (attachment.original_width, attachment.original_height) == (3000, 4000)
    assert (attachment.width, attachment.height) == (960, 1312)
    sent = sent_image(attachment)
    assert close_to(sent.getpixel((480, 1200)), RED)  # counter-clockwise: stored left goes to the bottom
    assert close_to(sent.getpixel((480, 100)), BLUE)


def test_rgba_transparency_is_flattened_onto_white() -> None:
    image = halves((640, 480), (0, 0, 0, 0), (*RED, 255), mode="RGBA")
    attachment = prepare_image(encode(image, "PNG"), "logo.png")
    sent = sent_image(attachment).convert("RGB")
    assert sent.getpixel((100, 240)) == WHITE  # the transparent black pixel becomes white, not black
    assert close_to(sent.getpixel((540, 240)), RED)
    assert TRANSPARENCY_NOTE in attachment.notes


def test_opaque_rgba_needs_no_note() -> None:
    attachment = prepare_image(encode(Image.new("RGBA", (640, 480), (*RED, 255)), "PNG"), "opaque.png")
    assert attachment.notes == []


def test_la_transparency_is_flattened_onto_white() -> None:
    image = halves((640, 480), (0, 0), (0, 255), mode="LA")
    sent = sent_image(prepare_image(encode(image, "PNG"), "grey.png")).convert("RGB")
    assert sent.getpixel((100, 240)) == WHITE
    assert sent.getpixel((540, 240)) == (0, 0, 0)


def test_palette_png_with_transparency_is_flattened_onto_white() -> None:
    image = Image.new("P", (640, 480), 0)
    image.putpalette([0, 0, 0, *RED] + [0] * (256 - 2) * 3)
    ImageDraw.Draw(image).rectangle((320, 0, 640, 480), fill=1)
    data = encode(image, "PNG", transparency=0)  # palette index 0 (black) is transparent
    assert Image.open(io.BytesIO(data)).mode == "P"
    attachment = prepare_image(data, "palette.png")
    sent = sent_image(attachment).convert("RGB")
    assert sent.getpixel((100, 240)) == WHITE
    assert close_to(sent.getpixel((540, 240)), RED)
    assert TRANSPARENCY_NOTE in attachment.notes


def test_sixteen_bit_png_keeps_its_grey_level() -> None:
    data = encode(Image.new("I;16", (640, 480), 32768), "PNG")  # mid-grey on 0..65535
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    sent = sent_image(prepare_image(data, "scan16.png")).convert("RGB")
    assert close_to(sent.getpixel((320, 240)), (128, 128, 128), tolerance=2)  # not clipped to white


def test_cmyk_jpeg_becomes_rgb() -> None:
    data = encode(Image.new("CMYK", (640, 480), (0, 255, 255, 0)), "JPEG")  # pure red in CMYK
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    attachment = prepare_image(data, "print.jpg")
    sent = sent_image(attachment)
    assert sent.mode == "RGB"
    assert close_to(sent.getpixel((320, 240)), RED, tolerance=25)


@pytest.mark.parametrize("mode", ["1", "L", "RGB", "YCbCr"])
def test_other_modes_become_rgb(mode: str) -> None:
    image = Image.new("RGB", (640, 480), WHITE).convert(mode)
    image_format = "JPEG" if mode == "YCbCr" else "PNG"
    sent = sent_image(prepare_image(encode(image, image_format), f"mode-{mode}"))
    assert sent.mode == "RGB"
    assert close_to(sent.convert("RGB").getpixel((320, 240)), WHITE)


# --- animation --------------------------------------------------------------------------------------------


def test_animated_gif_with_300_frames_sends_the_first_frame() -> None:
    palette = [*RED, *BLUE, 0, 255, 0] + [0] * (256 - 3) * 3
    frames = []
    for index in range(300):
        frame = Image.new("P", (64, 64), 0 if index == 0 else 1 + index % 2)
        frame.putpalette(palette)
        frames.append(frame)
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=40, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == 300
    attachment = prepare_image(data, "party.gif")
    assert ANIMATED_NOTE in attachment.notes
    assert close_to(sent_image(attachment).convert("RGB").getpixel((128, 128)), RED)
    assert (attachment.width, attachment.height) == (256, 256)


@pytest.mark.parametrize("image_format", ["PNG", "WEBP"])
def test_animated_png_and_webp_send_the_first_frame(image_format: str) -> None:
    frames = [Image.new("RGB", (320, 240), colour) for colour in (RED, BLUE, (0, 255, 0))]
    data = encode(
        frames[0], image_format, save_all=True, append_images=frames[1:], duration=100, lossless=True
    )
    assert getattr(Image.open(io.BytesIO(data)), "is_animated", False)
    attachment = prepare_image(data, f"anim.{image_format.lower()}")
    assert ANIMATED_NOTE in attachment.notes
    assert close_to(sent_image(attachment).convert("RGB").getpixel((100, 100)), RED)


def test_still_gif_has_no_animation_note() -> None:
    assert ANIMATED_NOTE not in prepare_image(encode(Image.new("RGB", (640, 480), RED), "GIF"), "s.gif").notes


# --- sizes ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1, 1), (20, 20), (10, 100), (100, 10), (33, 31)])
def test_tiny_images_are_upscaled_to_the_minimum(size: tuple[int, int]) -> None:
    width, height = size
    attachment = prepare_image(encode(Image.new("RGB", size, BLUE), "PNG"), "tiny.png")
    assert attachment.width % FACTOR == 0 and attachment.height % FACTOR == 0
    assert attachment.width * attachment.height >= MIN_PIXELS
    assert (attachment.height, attachment.width) == smart_resize(height, width, max_pixels=1280 * 1024)
    assert f"upscaled from {width}x{height} to {attachment.width}x{attachment.height}" in attachment.notes
    assert attachment.tokens == visual_tokens(attachment.height, attachment.width) >= 64
    sent = sent_image(attachment)
    assert sent.size == (attachment.width, attachment.height)
    assert close_to(sent.convert("RGB").getpixel((sent.width // 2, sent.height // 2)), BLUE)


def test_12mp_jpeg_is_downscaled_to_the_budget(photo_12mp: Image.Image) -> None:
    attachment = prepare_image(encode(photo_12mp, "JPEG", quality=90), "photo.jpg")
    assert (attachment.width, attachment.height) == (1312, 960)
    assert (attachment.height, attachment.width) == smart_resize(3000, 4000, max_pixels=1280 * 1024)
    assert attachment.tokens == visual_tokens(960, 1312) == 1230 <= 1280
    assert (attachment.original_width, attachment.original_height) == (4000, 3000)
    assert attachment.notes == ["downscaled from 4000x3000 to 1312x960"]
    assert attachment.mime_type == "image/jpeg"
    sent = sent_image(attachment)
    assert sent.size == (1312, 960)
    assert close_to(sent.getpixel((300, 480)), RED)
    assert close_to(sent.getpixel((1000, 480)), BLUE)


@pytest.mark.parametrize(
    ("stored_size", "orientation", "budget", "decoded_size"),
    [
        ((4000, 3000), 1, 1280, (2000, 1500)),
        ((4000, 3000), 6, 1280, (2000, 1500)),
        ((4000, 3000), 1, 256, (1000, 750)),
        ((4000, 3000), 8, 64, (500, 375)),
        ((1500, 4000), 6, 64, (188, 500)),  # target 480x160 as shown = 160x480 as stored: 1/8 fits
    ],
)
def test_large_jpeg_is_decoded_at_reduced_scale(
    monkeypatch: pytest.MonkeyPatch,
    stored_size: tuple[int, int],
    orientation: int,
    budget: int,
    decoded_size: tuple[int, int],
) -> None:
    """The speed of a 12 MP upload rests on libjpeg's DCT scaling: the smallest 1/2, 1/4, 1/8 still >= target."""
    drafted: list[tuple[int, int]] = []
    original_draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self: JpegImagePlugin.JpegImageFile, mode: str | None, size: tuple[int, int] | None) -> object:
        result = original_draft(self, mode, size)
        drafted.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    data = encode(halves(stored_size, RED, BLUE), "JPEG", exif=exif)
    attachment = prepare_image(data, "photo.jpg", token_budget=budget)
    assert drafted == [decoded_size]
    stored_target = (
        (attachment.height, attachment.width)
        if orientation in (5, 6, 7, 8)
        else (attachment.width, attachment.height)
    )
    assert decoded_size[0] >= stored_target[0] and decoded_size[1] >= stored_target[1]
    assert decoded_size[0] < 2 * stored_target[0] or decoded_size[1] < 2 * stored_target[1]


def test_small_jpeg_is_not_drafted(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", lambda *args: calls.append(args))
    prepare_image(encode(Image.new("RGB", (640, 480), RED), "JPEG"), "small.jpg")
    assert calls == []


@pytest.mark.parametrize("budget", [64, 100, 256, 1280, 4096, 16384])
def test_budget_sets_the_size_and_tokens_match_the_server(photo_12mp: Image.Image, budget: int) -> None:
    small = photo_12mp.resize((2000, 1500))  # keeps the test quick; same aspect
    attachment = prepare_image(encode(small, "BMP"), "b.bmp", token_budget=budget)
    h, w = attachment.height, attachment.width
    assert h % FACTOR == 0 and w % FACTOR == 0
    assert attachment.tokens == visual_tokens(h, w)
    assert smart_resize(h, w, max_pixels=SERVER_MAX_PIXELS) == (h, w)  # the server will not resize it again
    if budget >= 100:  # at 64 the 4:3 budget floors under MIN_PIXELS; the server's minimum wins (70 tokens)
        assert (h, w) == smart_resize(1500, 2000, max_pixels=budget * FACTOR * FACTOR)
        assert attachment.tokens <= budget
    else:
        assert (h, w) == (224, 320)
    assert sent_image(attachment).size == (w, h)


def test_budget_out_of_range_is_a_programming_error() -> None:
    data = encode(Image.new("RGB", (64, 64)), "PNG")
    for budget in (63, 16385):
        with pytest.raises(ValueError, match="token_budget") as caught:
            prepare_image(data, "x.png", token_budget=budget)
        assert not isinstance(caught.value, ImageRejected)


# --- refusals ---------------------------------------------------------------------------------------------


def heic_header() -> bytes:
    return struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic" + b"\x00" * 32


SVG = b'<?xml version="1.0" encoding="UTF-8"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"/>'

REFUSALS: dict[str, tuple[Callable[[], bytes], str]] = {
    "empty.jpg": (lambda: b"", "is empty"),
    "notes.png": (lambda: b"shopping list:\n- milk\n- eggs\n" * 20, "convert it to JPEG or PNG"),
    "drawing.svg": (lambda: SVG, "is an SVG drawing"),
    "iphone.heic": (heic_header, "is a HEIC/HEIF photo"),
    "scan.pdf": (lambda: b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n<<>>\nendobj\n", "is a PDF document"),
    "fax.tiff": (lambda: encode(Image.new("RGB", (64, 64)), "TIFF"), "is a TIFF image"),
    "wide.png": (lambda: encode(Image.new("RGB", (3000, 10)), "PNG"), "3000x10 pixels"),
    "tall.png": (lambda: encode(Image.new("RGB", (10, 3000)), "PNG"), "crop it"),
    "bomb.png": (lambda: png_header_only(60000, 60000), "too many pixels"),
    "big.png": (lambda: png_header_only(12000, 9000), "12000x9000 pixels (108 megapixels)"),
    "half.jpg": (lambda: encode(Image.effect_noise((640, 480), 50), "JPEG")[:5000], "truncated or corrupt"),
    "stub.jpg": (lambda: encode(Image.new("RGB", (640, 480)), "JPEG")[:20], "truncated or corrupt"),
    "stub.png": (lambda: encode(Image.new("RGB", (640, 480)), "PNG")[:30], "truncated or corrupt"),
    "cut.gif": (lambda: encode(Image.effect_noise((640, 480), 50), "GIF")[:2000], "truncated or corrupt"),
}


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
@pytest.mark.parametrize("name", sorted(REFUSALS))
def test_refusals_name_the_file_and_say_why(name: str) -> None:
    build, expected = REFUSALS[name]
    with pytest.raises(ImageRejected) as caught:
        prepare_image(build(), name)
    message = str(caught.value)
    assert message.startswith(name + " ")
    assert expected in message
    assert message.endswith(".")


def test_unsupported_formats_list_what_works() -> None:
    for name in ("notes.png", "drawing.svg", "iphone.heic", "scan.pdf", "fax.tiff"):
        build, _ = REFUSALS[name]
        with pytest.raises(ImageRejected, match=r"accepts JPEG, PNG, GIF, WebP or BMP images"):
            prepare_image(build(), name)


def test_truncated_12mp_jpeg_is_refused_in_draft_mode(photo_12mp: Image.Image) -> None:
    data = encode(photo_12mp, "JPEG", quality=90)
    with pytest.raises(ImageRejected, match=r"^photo\.jpg is truncated or corrupt; re-export it"):
        prepare_image(data[: len(data) // 2], "photo.jpg")


def test_over_max_bytes_is_refused_before_decoding() -> None:
    data = b"\xff\xd8\xff" + b"\x00" * (int(31.2 * 2**20) - 3)  # not a valid JPEG: decoding would say corrupt
    with pytest.raises(ImageRejected) as caught:
        prepare_image(data, "photo.jpg")
    assert str(caught.value).startswith(
        "photo.jpg is 31.2 MB; the limit is 20 MB per image (FRONTEND_MAX_UPLOAD_MB)"
    )
    with pytest.raises(ImageRejected, match=r"^a\.png is 1\.5 MB; the limit is 1 MB per image"):
        prepare_image(b"\x00" * (3 * 2**19), "a.png", max_bytes=2**20)
    with pytest.raises(ImageRejected, match=r"^a\.png is over 1 MB; the limit is 1 MB"):
        prepare_image(b"\x00" * (2**20 + 1), "a.png", max_bytes=2**20)


def test_decompression_bomb_is_refused_from_the_header_even_when_warnings_are_errors() -> None:
    limit_before = Image.MAX_IMAGE_PIXELS
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        for width, height in ((60000, 60000), (12000, 9000), (10001, 10000)):
            with pytest.raises(ImageRejected, match=r"^bomb\.png .*megapixels"):
                prepare_image(png_header_only(width, height), "bomb.png")
    assert limit_before == Image.MAX_IMAGE_PIXELS  # Pillow's process-wide limit is left alone
    assert MAX_SOURCE_PIXELS == Image.MAX_IMAGE_PIXELS  # no image between the two limits makes Pillow warn


def test_header_only_png_under_the_limit_is_decoded_and_found_truncated() -> None:
    """The bomb tests prove the header check: the same file, small enough, fails only when decoded."""
    with pytest.raises(ImageRejected, match="truncated or corrupt"):
        prepare_image(png_header_only(640, 480), "stub.png")


def test_png_text_bomb_is_refused_not_raised() -> None:
    """Pillow raises ValueError (not OSError) for a compressed comment over MAX_TEXT_CHUNK; it is wrapped too."""
    info = PngImagePlugin.PngInfo()
    info.add_text("comment", "x" * (2 * PngImagePlugin.MAX_TEXT_CHUNK), zip=True)
    data = encode(Image.new("RGB", (64, 64)), "PNG", pnginfo=info)
    with pytest.raises(ImageRejected, match=r"^textbomb\.png is truncated or corrupt"):
        prepare_image(data, "textbomb.png")


def test_aspect_ratio_that_rounding_pushes_past_200_is_refused() -> None:
    """33x6600 is exactly 200:1 but smart_resize rounds it to 32x6592 (206:1), which the server refuses."""
    with pytest.raises(ImageRejected, match="crop it"):
        prepare_image(encode(Image.new("L", (6600, 33)), "PNG"), "strip.png")
    assert prepare_image(encode(Image.new("L", (6400, 32)), "PNG"), "ok.png").width == 6400


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "GIF", "WEBP", "BMP"])
def test_corrupted_bytes_give_image_rejected_or_an_image_never_another_error(image_format: str) -> None:
    source = encode(Image.effect_noise((96, 64), 40).convert("RGB"), image_format)
    generator = random.Random(f"{image_format}-fuzz")
    for _ in range(60):
        data = bytearray(source)
        for _ in range(generator.randint(1, 8)):
            data[generator.randrange(len(data))] = generator.randrange(256)
        if generator.random() < 0.3:
            data = data[: generator.randrange(1, len(data))]
        try:
            attachment = prepare_image(bytes(data), "fuzz.bin")
        except ImageRejected as error:
            assert "fuzz.bin" in str(error)
        else:
            assert sent_image(attachment).size == (attachment.width, attachment.height)
