"""The bad-input battery: images through the chat page, text, configuration and the raw API, each case with a
clear message and nothing lost.

Images and long text go through the page itself (AppTest) against the real tiny vLLM server: a refused file
names itself and says what to do, the typed text is put back into the input, nothing enters the history and
the earlier history is intact; an accepted odd file is answered by the server and its thumbnail says what
it costs. Configuration mistakes go through `python -m serve` as a user runs it, without starting vLLM
except where the mistake only shows once vLLM runs. API cases use the OpenAI SDK straight to the server.
The last test checks the server is still healthy after all of it.
"""

from __future__ import annotations

import io
import json
import os
import socket
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
import yaml
from PIL import Image, ImageDraw
from streamlit.testing.v1 import AppTest

from frontend.conversation import AnswerStatus, Conversation
from frontend.store import ConversationStore
from harness.serve_up import REPO_ROOT, free_port
from harness.tiny_checkpoint import harness_env, write_tiny_profile
from tests.conftest import TinyServer
from tests.helpers.images import image_bytes, image_message, png_data_url, text_message
from tests.helpers.page import APP, File, saved, send, start_page, stats_lines

pytestmark = pytest.mark.vllm

PROFILES = REPO_ROOT / "profiles"
TYPED = "What do you see here?"
Page = Callable[..., AppTest]


# ------------------------------------------------------------------------------------------------ the page


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def open_page(monkeypatch: pytest.MonkeyPatch, data_dir: Path, tiny_server: TinyServer) -> Page:
    """The page configured like compose does, with the tiny server as its one endpoint."""
    endpoint = {
        "name": "Tiny A",
        "base_url": tiny_server.base_url,
        "api_key": tiny_server.api_key,
        "image_limit": tiny_server.image_limit,
    }

    def start(**variables: str) -> AppTest:
        variables = {"FRONTEND_MAX_TOKENS": "8", **variables}
        return start_page(monkeypatch, data_dir, [endpoint], timeout_s=180, **variables)

    return start


def answered_with_history(page: AppTest, data_dir: Path, server: TinyServer) -> Conversation:
    """Send one good message with an image and check it was answered: the history every refusal must keep."""
    send(page, "First, a good picture.", ("good.png", image_bytes(200, 150), "image/png"))
    assert [message.name for message in page.chat_message] == ["user", "assistant"]
    assert f"`{server.served_name}`" in stats_lines(page.chat_message[1])[0]
    return saved(data_dir, page)


def assert_refused(page: AppTest, data_dir: Path, before: Conversation, *fragments: str) -> None:
    """Nothing was sent, the error says the fragments, the text is back, the history is as it was."""
    errors = [error.value for error in page.error]
    assert len(errors) == 1, errors
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    assert page.chat_input[0].proto.value == TYPED, "the typed text was not put back into the input"
    assert [message.name for message in page.chat_message] == ["user", "assistant"]
    assert page.chat_message[0].markdown[0].value == "First, a good picture."
    assert stats_lines(page.chat_message[1]), "the earlier answer lost its stats"
    assert saved(data_dir, page) == before, "the stored conversation changed"


# ---------------------------------------------------------------------------------------- image factories


def encoded(image: Image.Image, image_format: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, image_format, **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int, height: int, *, bit_depth: int, colour_type: int, rows: bytes) -> bytes:
    """A PNG written chunk by chunk, for what Pillow will not write (48-bit RGB, lying headers)."""
    header = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def sixteen_bit_grey_png() -> bytes:
    grey = Image.linear_gradient("L").resize((300, 200)).convert("I").point(lambda value: value * 257)
    data = encoded(grey.convert("I;16"), "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I;16")
    return data


def sixteen_bit_rgb_png() -> bytes:
    width, height = 160, 120
    row = bytes((x * 7) % 256 for x in range(width * 6))  # 3 channels x 2 bytes per pixel
    return raw_png(width, height, bit_depth=16, colour_type=2, rows=(b"\x00" + row) * height)


def cmyk_jpeg() -> bytes:
    data = encoded(Image.new("CMYK", (240, 180), (0, 200, 255, 10)), "JPEG")
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    return data


def palette_png_with_transparency() -> bytes:
    image = Image.new("P", (200, 150))
    image.putpalette([channel for index in range(256) for channel in (index, 255 - index, 128)])
    ImageDraw.Draw(image).rectangle((50, 40, 150, 110), fill=7)
    data = encoded(image, "PNG", transparency=0)  # index 0, the background, is see-through
    assert Image.open(io.BytesIO(data)).mode == "P"
    return data


def animated_gif(frames: int = 300) -> bytes:
    pictures = []
    for index in range(frames):
        frame = Image.new("RGB", (64, 48), "white")
        ImageDraw.Draw(frame).rectangle((index % 60, 10, index % 60 + 4, 30), fill=(index % 256, 0, 0))
        pictures.append(frame)
    data = encoded(pictures[0], "GIF", save_all=True, append_images=pictures[1:], duration=20, loop=0)
    assert Image.open(io.BytesIO(data)).n_frames == frames
    return data


def apng() -> bytes:
    frames = [Image.new("RGBA", (80, 60), (index * 20, 0, 255 - index * 20, 255)) for index in range(10)]
    data = encoded(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=50)
    assert Image.open(io.BytesIO(data)).n_frames == 10
    return data


def decompression_bomb() -> bytes:
    """A PNG that says it is 50,000 x 50,000 (2.5 gigapixels) in 69 bytes."""
    return raw_png(50_000, 50_000, bit_depth=8, colour_type=0, rows=b"\x00" * 64)


def heic_photo() -> bytes:
    """The start of an iPhone HEIC file (an ISO-BMFF `ftyp` box with the heic brand)."""
    return b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(range(256)) * 4


SVG = (
    b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="100" height="80">'
    b'<rect width="100" height="80" fill="red"/></svg>'
)


# ------------------------------------------------------------------------------------ refused image files

# The chat input only offers jpg/jpeg/png/gif/webp/bmp files, so odd content arrives under those names: a
# renamed file, or a phone's HEIC photo shared as .jpg.
REFUSED = [
    pytest.param(
        ("empty.png", b"", "image/png"), ["empty.png", "0 bytes", "choose the file again"], id="zero-bytes"
    ),
    pytest.param(
        ("cut.jpg", image_bytes(400, 300, "JPEG")[:700], "image/jpeg"),
        ["cut.jpg", "truncated or corrupt", "upload it again"],
        id="truncated-jpeg",
    ),
    pytest.param(
        ("notes.png", b"Shopping list:\n- milk\n- bread\n", "image/png"),
        ["notes.png", "not an image", "convert it to JPEG or PNG"],
        id="text-file-named-png",
    ),
    pytest.param(
        ("drawing.png", SVG, "image/png"),
        ["drawing.png", "SVG drawing", "convert it to JPEG or PNG"],
        id="svg",
    ),
    pytest.param(
        ("IMG_0042.jpg", heic_photo(), "image/jpeg"),
        ["IMG_0042.jpg", "HEIC/HEIF photo", "convert it to JPEG or PNG"],
        id="heic",
    ),
    pytest.param(
        ("strip.png", encoded(Image.new("RGB", (3000, 10), "blue"), "PNG"), "image/png"),
        ["strip.png", "3000x10", "200:1", "crop it"],
        id="aspect-3000x10",
    ),
    pytest.param(
        ("bomb.png", decompression_bomb(), "image/png"),
        ["bomb.png", "too many pixels", "scale it down"],
        id="decompression-bomb",
    ),
]


@pytest.mark.parametrize(("upload", "fragments"), REFUSED)
def test_a_refused_image_names_itself_and_loses_nothing(
    open_page: Page, data_dir: Path, tiny_server: TinyServer, upload: File, fragments: list[str]
) -> None:
    page = open_page()
    before = answered_with_history(page, data_dir, tiny_server)
    send(page, TYPED, upload)
    assert_refused(page, data_dir, before, *fragments)
    assert not page.info, "a refused file must not wait to be sent"


def test_an_image_over_the_upload_cap_is_refused(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    page = open_page(FRONTEND_MAX_UPLOAD_MB="1")
    # The widget takes the larger (video) cap; the image's own cap is the page's check, tested here.
    assert page.chat_input[0].proto.max_upload_size_mb == 200
    before = answered_with_history(page, data_dir, tiny_server)
    noise = encoded(Image.frombytes("RGB", (800, 800), os.urandom(800 * 800 * 3)), "PNG")
    assert len(noise) > 1024 * 1024
    send(page, TYPED, ("noise.png", noise, "image/png"))
    assert_refused(page, data_dir, before, "noise.png", "1 MB", "FRONTEND_MAX_UPLOAD_MB", "scale it down")


def test_more_images_than_the_endpoint_allows_are_refused(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    page = open_page()
    before = answered_with_history(page, data_dir, tiny_server)
    pictures = [(f"p{n}.png", image_bytes(64 + 32 * n, 64), "image/png") for n in range(3)]
    assert len(pictures) > tiny_server.image_limit
    send(page, TYPED, *pictures)
    assert_refused(
        page, data_dir, before, "at most 2 image(s) per message", "has 3", "the rest with your next message"
    )


def test_after_too_many_images_the_next_message_is_not_refused_again(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    page = open_page()
    pictures = [(f"p{n}.png", image_bytes(64 + 32 * n, 64), "image/png") for n in range(3)]
    send(page, TYPED, *pictures)
    send(page, "Then just this text.")
    assert not page.error, [error.value for error in page.error]
    assert len(page.chat_message) == 2


# ----------------------------------------------------------------------------------- accepted odd images

ACCEPTED = [
    pytest.param(("grey16.png", sixteen_bit_grey_png(), "image/png"), [], id="16-bit-grey-png"),
    pytest.param(("rgb48.png", sixteen_bit_rgb_png(), "image/png"), [], id="16-bit-rgb-png"),
    pytest.param(("print.jpg", cmyk_jpeg(), "image/jpeg"), [], id="cmyk-jpeg"),
    pytest.param(
        ("logo.png", palette_png_with_transparency(), "image/png"),
        ["transparent areas filled with white"],
        id="palette-png-transparency",
    ),
    pytest.param(
        ("dot.png", encoded(Image.new("RGB", (1, 1), "red"), "PNG"), "image/png"),
        ["upscaled from 1x1"],
        id="1x1",
    ),
    pytest.param(
        ("dance.gif", animated_gif(), "image/gif"),
        ["only the first frame is sent"],
        id="animated-gif-300-frames",
    ),
    pytest.param(("spin.png", apng(), "image/png"), ["only the first frame is sent"], id="apng"),
]


@pytest.mark.parametrize(("upload", "notes"), ACCEPTED)
def test_an_odd_but_valid_image_is_answered(
    open_page: Page, data_dir: Path, tiny_server: TinyServer, upload: File, notes: list[str]
) -> None:
    page = send(open_page(), TYPED, upload)
    assert not page.error, [error.value for error in page.error]
    user, assistant = page.chat_message
    [thumbnail] = user.get("image")
    caption = thumbnail.captions[0]
    assert caption.startswith(upload[0]) and caption.endswith("tokens"), caption
    shown = [text.value for text in user.caption]
    for note in notes:
        assert any(note in text for text in shown), shown
    [stats] = stats_lines(assistant)
    assert f"`{tiny_server.served_name}`" in stats and "prompt +" in stats
    stored = saved(data_dir, page)
    assert stored.messages[0].text == TYPED and stored.messages[0].images[0].name == upload[0]
    answer = stored.messages[1].answers[0]
    assert answer.status is AnswerStatus.DONE, answer.error
    assert answer.stats.prompt_tokens > 64  # the image's visual tokens are in the prompt


# --------------------------------------------------------------------------------------------------- text


def test_an_empty_message_is_refused_and_the_history_stays(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    page = open_page()
    before = answered_with_history(page, data_dir, tiny_server)
    send(page, "  \n\t ")
    assert "Type a message or attach an image first." in page.error[0].value
    assert len(page.chat_message) == 2
    assert saved(data_dir, page) == before


def test_a_message_longer_than_the_context_is_kept_explained_and_can_be_retried(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    page = open_page()
    answered_with_history(page, data_dir, tiny_server)
    long_text = "word " * (tiny_server.max_model_len + 500)
    send(page, long_text)

    assert len(page.chat_message) == 4  # the message stays in the history, with the failed answer
    [error] = page.chat_message[3].error
    assert "no longer fits Tiny A's context" in error.value and "maximum context length" in error.value
    assert "Start a new chat" in error.value
    stored = saved(data_dir, page)
    assert stored.messages[2].text == long_text.strip()
    assert stored.messages[3].answers[0].status is AnswerStatus.FAILED

    page.button(key="regenerate-button").click().run()  # a retry gives the same clear answer, no crash
    assert not page.exception
    assert "no longer fits" in page.chat_message[3].error[0].value
    assert len(saved(data_dir, page).messages) == 4

    chat_id = page.query_params["chat"]
    page.button(key="new-chat").click().run()  # what the message advises: a new chat works at once
    send(page, "A short question.")
    assert stats_lines(page.chat_message[1])
    assert len(ConversationStore(data_dir / "chats.sqlite3").load(chat_id).messages) == 4  # old chat kept


def test_control_characters_are_answered_and_kept_as_typed(
    open_page: Page, data_dir: Path, tiny_server: TinyServer
) -> None:
    text = "Bell\x07 null\x00 escape\x1b[31m red del\x7f zero-width\u200b right-to-left\u202e end"
    page = send(open_page(), text)
    assert not page.error
    [stats] = stats_lines(page.chat_message[1])
    assert f"`{tiny_server.served_name}`" in stats
    stored = saved(data_dir, page)
    assert stored.messages[0].text == text
    assert stored.messages[1].answers[0].status is AnswerStatus.DONE


def test_invalid_utf8_gets_a_400_and_the_server_stays_healthy(tiny_server: TinyServer) -> None:
    body = (
        b'{"model": "' + tiny_server.served_name.encode() + b'", "max_tokens": 4, '
        b'"messages": [{"role": "user", "content": "caf\xe9 \xff\xfe"}]}'
    )
    headers = {"Authorization": f"Bearer {tiny_server.api_key}", "Content-Type": "application/json"}
    response = httpx.post(
        f"{tiny_server.base_url}/chat/completions", content=body, headers=headers, timeout=60
    )
    assert response.status_code == 400
    assert (
        "error parsing the body" in response.text
    )  # vLLM 0.32: {"detail": "There was an error parsing the body"}
    assert httpx.get(f"{tiny_server.root_url}/health", timeout=10).status_code == 200


# ------------------------------------------------------------------------------------------ configuration


def serve(
    *args: str, cwd: Path = REPO_ROOT, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "serve", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def tiny_profile_file(path: Path, checkpoint: Path, **changes: Any) -> Path:
    """The tiny server's profile, with keys changed (None removes a key)."""
    write_tiny_profile(path, checkpoint=checkpoint, port=free_port())
    data = yaml.safe_load(path.read_text())
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path.write_text(yaml.safe_dump(data))
    return path


def test_config_broken_yaml_names_the_file_and_line(tmp_path: Path) -> None:
    profile = tmp_path / "broken.yaml"
    profile.write_text("model: Qwen/Qwen3-VL-4B-Instruct\nport: 8001\n  max-model-len: [8192\n")
    for args in (["up", str(profile)], ["--profiles-dir", str(tmp_path), "check", "--no-compose"]):
        result = serve(*args)
        assert result.returncode in (1, 2), result
        output = result.stdout + result.stderr
        assert "broken.yaml" in output and "YAML syntax error at line" in output, output
        assert "Traceback" not in output


def test_config_unknown_profile_lists_the_known_ones(tmp_path: Path) -> None:
    result = serve("up", "9b", cwd=tmp_path, env={"SERVE_PROFILES_DIR": str(PROFILES)})
    assert result.returncode == 2
    assert "unknown profile '9b'" in result.stderr
    for known in ("8b", "4b", "8b-fp8", "4b-thinking"):
        assert known in result.stderr


@pytest.mark.parametrize(
    ("changes", "environ", "fragments"),
    [
        pytest.param(
            {"gpu-memory-utilization": 1.5},
            {},
            ["gpu-memory-utilization: 1.5 is outside (0, 1]"],
            id="profile",
        ),
        pytest.param(
            {}, {"SERVE_8B_GPU_MEMORY_UTILIZATION": "0"}, ["SERVE_8B_GPU_MEMORY_UTILIZATION"], id="env"
        ),
    ],
)
def test_config_out_of_range_fraction_is_refused_before_vllm_starts(
    tmp_path: Path, changes: dict[str, Any], environ: dict[str, str], fragments: list[str]
) -> None:
    data = yaml.safe_load((PROFILES / "8b.yaml").read_text())
    data.update(changes)
    profile = tmp_path / "8b.yaml"
    profile.write_text(yaml.safe_dump(data))
    result = serve("up", str(profile), "--log-file", str(tmp_path / "vllm.log"), env=environ)
    assert result.returncode == 2, result
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr
    assert not (tmp_path / "vllm.log").exists(), "vLLM was started"


def test_config_profile_without_a_model_is_refused(tmp_path: Path, tiny_checkpoint: Path) -> None:
    profile = tiny_profile_file(tmp_path / "nomodel.yaml", tiny_checkpoint, model=None)
    result = serve("up", str(profile), "--log-file", str(tmp_path / "vllm.log"))
    assert result.returncode == 2
    assert "nomodel.yaml: model: is required" in result.stderr
    assert not (tmp_path / "vllm.log").exists()


def test_config_missing_checkpoint_is_named_by_check(tmp_path: Path, tiny_checkpoint: Path) -> None:
    tiny_profile_file(tmp_path / "gone.yaml", tiny_checkpoint, model=str(tmp_path / "no-such-checkpoint"))
    result = serve("--profiles-dir", str(tmp_path), "check", "--no-compose")
    assert "no-such-checkpoint" in result.stdout and "is not a local directory" in result.stdout


def test_config_missing_checkpoint_makes_serve_up_say_which(tmp_path: Path, tiny_checkpoint: Path) -> None:
    missing = tmp_path / "no-such-checkpoint"
    profile = tiny_profile_file(tmp_path / "gone.yaml", tiny_checkpoint, model=str(missing))
    result = serve(
        "up", str(profile), "--log-file", str(tmp_path / "vllm.log"), env=harness_env(cache_dir=tmp_path)
    )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert str(missing) in output, output
    assert "what to change:" in output and "model:" in output, output


def test_config_port_in_use_fails_fast_without_starting_vllm(tmp_path: Path, tiny_checkpoint: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        profile = tiny_profile_file(tmp_path / "tiny.yaml", tiny_checkpoint, port=port)
        result = serve("up", str(profile), "--log-file", str(tmp_path / "vllm.log"))
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr and "--port" in result.stderr
    assert not (tmp_path / "vllm.log").exists()


def test_config_frontend_variable_out_of_range_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FRONTEND_ENDPOINTS", json.dumps([{"name": "X", "base_url": "http://127.0.0.1:9/v1"}]))
    monkeypatch.setenv("FRONTEND_MAX_UPLOAD_MB", "0")
    page = AppTest.from_file(APP, default_timeout=60)
    page.run()
    assert not page.exception
    assert "Configuration error: FRONTEND_MAX_UPLOAD_MB" in page.error[0].value
    assert "greater than or equal to 1" in page.error[0].value


# ------------------------------------------------------------------------------------- API, straight to vLLM


@pytest.fixture(scope="module")
def client(tiny_server: TinyServer) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=tiny_server.base_url, api_key=tiny_server.api_key, max_retries=0, timeout=120
    )


def test_api_unknown_model_is_404_naming_the_served_one(
    client: openai.OpenAI, tiny_server: TinyServer
) -> None:
    with pytest.raises(openai.NotFoundError) as error:
        client.chat.completions.create(model="qwen3-vl-99b", messages=[text_message("Hi.")], max_tokens=1)
    assert "The model `qwen3-vl-99b` does not exist" in str(error.value)
    assert tiny_server.served_name in str(error.value)  # "Valid aliases: ..."


def test_api_max_tokens_over_the_context_length_is_refused(
    client: openai.OpenAI, tiny_server: TinyServer
) -> None:
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(
            model=tiny_server.served_name,
            messages=[text_message("Hi.")],
            max_tokens=tiny_server.max_model_len + 1,
        )
    assert f"cannot be greater than max_model_len={tiny_server.max_model_len}" in str(error.value)


def test_api_max_tokens_over_what_the_prompt_leaves_is_clamped(
    client: openai.OpenAI, tiny_server: TinyServer
) -> None:
    """vLLM 0.32 accepts max_tokens up to max_model_len whatever the prompt, and stops at the context's end:
    prompt + answer = max_model_len exactly, finish_reason "length"."""
    prompt = "word " * 500  # about 1,000 tokens: half the context
    response = client.chat.completions.create(
        model=tiny_server.served_name,
        messages=[text_message(prompt)],
        max_tokens=tiny_server.max_model_len,
        extra_body={"ignore_eos": True},
    )
    usage = response.usage
    assert usage.prompt_tokens + tiny_server.max_model_len > tiny_server.max_model_len
    assert usage.completion_tokens == tiny_server.max_model_len - usage.prompt_tokens
    assert usage.total_tokens == tiny_server.max_model_len
    assert response.choices[0].finish_reason == "length"


@pytest.mark.parametrize(
    ("part", "fragment"),
    [
        pytest.param({"type": "image_url"}, "image_url", id="image-part-without-url"),
        pytest.param(
            {"type": "image_url", "image_url": {"url": 42}}, "validation error", id="url-not-a-string"
        ),
        pytest.param({"type": "hologram", "hologram": "x"}, "hologram", id="unknown-part-type"),
        pytest.param(42, "valid dictionary", id="part-is-a-number"),
        pytest.param(
            {"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AAAA"}},
            "Could not open video stream",
            id="video-unreadable",
        ),
        pytest.param(
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@not-base64@@"}},
            "Non-base64 digit found",
            id="image-not-base64",
        ),
    ],
)
def test_api_malformed_content_parts_get_a_400(
    client: openai.OpenAI, tiny_server: TinyServer, part: Any, fragment: str
) -> None:
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(
            model=tiny_server.served_name,
            messages=[{"role": "user", "content": [part, {"type": "text", "text": "What is it?"}]}],
            max_tokens=2,
        )
    assert error.value.status_code == 400
    assert fragment in str(error.value)


def test_api_text_part_without_text_is_ignored(client: openai.OpenAI, tiny_server: TinyServer) -> None:
    """vLLM 0.32 accepts {"type": "text"} with no text and drops it: the prompt is the same without it."""

    def prompt_tokens(parts: list[dict[str, Any]]) -> int:
        response = client.chat.completions.create(
            model=tiny_server.served_name, messages=[{"role": "user", "content": parts}], max_tokens=1
        )
        return response.usage.prompt_tokens

    question = {"type": "text", "text": "What is it?"}
    assert prompt_tokens([{"type": "text"}, question]) == prompt_tokens([question])


# -------------------------------------------------------------------------------------------- at the end


def test_the_server_is_still_healthy_after_the_battery(
    client: openai.OpenAI, tiny_server: TinyServer
) -> None:
    assert httpx.get(f"{tiny_server.root_url}/health", timeout=10).status_code == 200
    response = client.chat.completions.create(
        model=tiny_server.served_name,
        messages=[image_message("Still there?", png_data_url(96, 64))],
        max_tokens=4,
    )
    assert response.choices[0].finish_reason in {"stop", "length"}
    assert response.usage.prompt_tokens > 0
