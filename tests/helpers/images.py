"""Small image helpers for API tests: in-memory images as data URLs, chat messages, expected token counts."""

from __future__ import annotations

import base64
import contextlib
import http.server
import io
import math
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

# One visual token per 32x32 pixels (patch 16, merge 2) and the tiny checkpoint's default pixel bounds.
PIXELS_PER_TOKEN_SIDE = 32
MIN_PIXELS = 32 * 32
MAX_PIXELS = 256 * 256
# Qwen's prompt wraps each image's tokens in <|vision_start|> ... <|vision_end|>.
VISION_MARKERS_PER_IMAGE = 2

_MIME_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "GIF": "image/gif"}


def image_bytes(width: int, height: int, image_format: str = "PNG") -> bytes:
    """A real encoded image with some structure (a gradient), so every codec has content to encode."""
    image = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format=image_format)
    return buffer.getvalue()


def data_url(payload: bytes, mime_type: str) -> str:
    return f"data:{mime_type};base64,{base64.b64encode(payload).decode('ascii')}"


def image_data_url(width: int, height: int, image_format: str = "PNG") -> str:
    """A data: URL of a generated image in PNG, JPEG or GIF."""
    return data_url(image_bytes(width, height, image_format), _MIME_TYPES[image_format])


def png_data_url(width: int, height: int) -> str:
    return image_data_url(width, height, "PNG")


def image_part(url: str) -> dict[str, Any]:
    """An OpenAI chat content part referencing an image by URL."""
    return {"type": "image_url", "image_url": {"url": url}}


def image_message(text: str, *image_urls: str, role: str = "user") -> dict[str, Any]:
    """A chat message with a text part followed by one part per image URL."""
    return {"role": role, "content": [{"type": "text", "text": text}, *map(image_part, image_urls)]}


def text_message(text: str, role: str = "user") -> dict[str, Any]:
    return {"role": role, "content": text}


def visual_tokens(
    width: int, height: int, *, min_pixels: int = MIN_PIXELS, max_pixels: int = MAX_PIXELS
) -> int:
    """Visual tokens Qwen2/3-VL gives an image: smart_resize to a 32-pixel grid, one token per cell.

    Written out here (not imported from transformers) so the tests check vLLM against the rule itself.
    """
    factor = PIXELS_PER_TOKEN_SIDE
    resized_height = round(height / factor) * factor
    resized_width = round(width / factor) * factor
    if resized_height * resized_width > max_pixels:
        beta = math.sqrt(height * width / max_pixels)
        resized_height = max(factor, math.floor(height / beta / factor) * factor)
        resized_width = max(factor, math.floor(width / beta / factor) * factor)
    elif resized_height * resized_width < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        resized_height = math.ceil(height * beta / factor) * factor
        resized_width = math.ceil(width * beta / factor) * factor
    return (resized_height // factor) * (resized_width // factor)


@dataclass
class LocalImageServer:
    """A PNG served over plain HTTP on 127.0.0.1, remembering every path it was asked for."""

    url: str
    requested_paths: list[str] = field(default_factory=list)


@contextlib.contextmanager
def local_png_server(width: int = 64, height: int = 64) -> Iterator[LocalImageServer]:
    """Serve one real PNG at http://127.0.0.1:<free port>/image.png for the duration of the block."""
    payload = image_bytes(width, height, "PNG")
    requested_paths: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            requested_paths.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output quiet

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        yield LocalImageServer(url=f"http://127.0.0.1:{port}/image.png", requested_paths=requested_paths)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
