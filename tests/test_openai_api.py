"""The OpenAI-compatible API of a real vLLM, exercised through the `openai` SDK.

The server (fixture `tiny_server`) runs a tiny random Qwen3-VL, so its answers are random text: the tests
assert on structure, token usage, status codes and vLLM's own error messages, never on answer content.
"""

from __future__ import annotations

from typing import Any, Protocol

import httpx
import openai
import pytest

from tests.helpers.images import (
    VISION_MARKERS_PER_IMAGE,
    image_data_url,
    image_message,
    local_png_server,
    png_data_url,
    text_message,
    visual_tokens,
)

pytestmark = pytest.mark.vllm

MAX_TOKENS = 8


class TinyServer(Protocol):
    """What the `tiny_server` fixture (tests/conftest.py) yields."""

    base_url: str  # http://127.0.0.1:PORT/v1
    root_url: str  # http://127.0.0.1:PORT
    api_key: str
    served_name: str
    max_model_len: int
    image_limit: int


@pytest.fixture(scope="module")
def client(tiny_server: TinyServer) -> openai.OpenAI:
    return openai.OpenAI(
        base_url=tiny_server.base_url, api_key=tiny_server.api_key, max_retries=0, timeout=60
    )


def chat(
    client: openai.OpenAI, tiny_server: TinyServer, messages: list[dict[str, Any]], **options: Any
) -> Any:
    """One non-streaming chat completion with deterministic, short output."""
    return client.chat.completions.create(
        model=tiny_server.served_name,
        messages=messages,
        max_tokens=MAX_TOKENS,
        temperature=0,
        **options,
    )


def prompt_tokens(client: openai.OpenAI, tiny_server: TinyServer, messages: list[dict[str, Any]]) -> int:
    return chat(client, tiny_server, messages).usage.prompt_tokens


def image_cost(width: int, height: int) -> int:
    """Prompt tokens one image adds: its visual tokens plus the vision start/end markers."""
    return visual_tokens(width, height) + VISION_MARKERS_PER_IMAGE


# --- models and plain text ----------------------------------------------------------------------------


def test_models_lists_served_name_with_context_length(client: openai.OpenAI, tiny_server: TinyServer) -> None:
    models = {model.id: model for model in client.models.list().data}
    assert tiny_server.served_name in models
    assert models[tiny_server.served_name].model_extra["max_model_len"] == tiny_server.max_model_len


def test_text_chat_completion(client: openai.OpenAI, tiny_server: TinyServer) -> None:
    response = chat(client, tiny_server, [text_message("Say hello.")])
    assert response.model == tiny_server.served_name
    assert response.choices, "no choices"
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert choice.finish_reason in {"stop", "length"}
    usage = response.usage
    assert usage is not None
    assert usage.prompt_tokens > 0
    assert 0 < usage.completion_tokens <= MAX_TOKENS
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


# --- images ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("image_format", ["PNG", "JPEG", "GIF"])
def test_one_image_per_format_is_counted(
    client: openai.OpenAI, tiny_server: TinyServer, image_format: str
) -> None:
    text_only = prompt_tokens(client, tiny_server, [text_message("Describe it.")])
    response = chat(
        client, tiny_server, [image_message("Describe it.", image_data_url(64, 64, image_format))]
    )
    assert response.choices[0].finish_reason in {"stop", "length"}
    assert response.usage.prompt_tokens == text_only + image_cost(64, 64)


def test_two_images_in_one_message(client: openai.OpenAI, tiny_server: TinyServer) -> None:
    text_only = prompt_tokens(client, tiny_server, [text_message("Compare.")])
    both = prompt_tokens(
        client, tiny_server, [image_message("Compare.", png_data_url(64, 64), png_data_url(96, 160))]
    )
    assert both == text_only + image_cost(64, 64) + image_cost(96, 160)


def test_image_in_an_earlier_turn_is_part_of_the_prompt(
    client: openai.OpenAI, tiny_server: TinyServer
) -> None:
    def conversation(first_turn: dict[str, Any]) -> list[dict[str, Any]]:
        return [first_turn, text_message("A picture.", role="assistant"), text_message("What colour is it?")]

    without_image = prompt_tokens(client, tiny_server, conversation(image_message("Look.")))
    with_image = prompt_tokens(
        client, tiny_server, conversation(image_message("Look.", png_data_url(128, 64)))
    )
    assert with_image == without_image + image_cost(128, 64)


def stream_chat(
    client: openai.OpenAI, tiny_server: TinyServer, messages: list[dict[str, Any]]
) -> tuple[str, Any]:
    """Stream a completion; return the joined content and the usage of the final chunk."""
    stream = client.chat.completions.create(
        model=tiny_server.served_name,
        messages=messages,
        max_tokens=MAX_TOKENS,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"ignore_eos": True},  # a random model may stop at once; we need content deltas
    )
    chunks = list(stream)
    content = "".join(chunk.choices[0].delta.content or "" for chunk in chunks if chunk.choices)
    assert all(chunk.usage is None for chunk in chunks[:-1]), "usage before the final chunk"
    final = chunks[-1]
    assert final.choices == [] and final.usage is not None, "final chunk carries no usage"
    return content, final.usage


def test_streaming_delivers_content_then_usage(client: openai.OpenAI, tiny_server: TinyServer) -> None:
    content, usage = stream_chat(client, tiny_server, [image_message("Describe it.", png_data_url(64, 64))])
    assert content
    assert usage.completion_tokens == MAX_TOKENS
    assert usage.total_tokens == usage.prompt_tokens + MAX_TOKENS


def test_streamed_usage_follows_the_32_pixel_grid(client: openai.OpenAI, tiny_server: TinyServer) -> None:
    def streamed_prompt_tokens(width: int, height: int) -> int:
        return stream_chat(client, tiny_server, [image_message("Size?", png_data_url(width, height))])[
            1
        ].prompt_tokens

    small = streamed_prompt_tokens(64, 64)  # 2x2 cells
    assert streamed_prompt_tokens(256, 256) - small == 8 * 8 - 2 * 2
    assert streamed_prompt_tokens(96, 160) - small == 3 * 5 - 2 * 2
    # Larger images are scaled down to the checkpoint's 256*256-pixel budget.
    assert streamed_prompt_tokens(512, 512) - small == 8 * 8 - 2 * 2


# --- bad input: vLLM's 4xx answers, surfaced by the SDK ---------------------------------------------------


def test_not_an_image_is_rejected(client: openai.OpenAI, tiny_server: TinyServer) -> None:
    fake_png = "data:image/png;base64," + "bm90IGFuIGltYWdl"  # "not an image"
    with pytest.raises(openai.BadRequestError) as error:
        chat(client, tiny_server, [image_message("Describe it.", fake_png)])
    assert error.value.status_code == 400
    assert "cannot identify image file" in str(error.value)


def test_more_images_than_the_limit_are_rejected(client: openai.OpenAI, tiny_server: TinyServer) -> None:
    too_many = [png_data_url(32, 32)] * (tiny_server.image_limit + 1)
    with pytest.raises(openai.BadRequestError) as error:
        chat(client, tiny_server, [image_message("Count.", *too_many)])
    assert error.value.status_code == 400
    assert f"At most {tiny_server.image_limit} image(s)" in str(error.value)


def test_prompt_over_the_context_length_is_rejected(client: openai.OpenAI, tiny_server: TinyServer) -> None:
    long_text = "word " * (tiny_server.max_model_len + 1)  # at least one token per word
    with pytest.raises(openai.BadRequestError) as error:
        chat(client, tiny_server, [text_message(long_text)])
    assert error.value.status_code == 400
    assert "maximum context length" in str(error.value)


def test_unknown_model_is_not_found(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as error:
        client.chat.completions.create(model="no-such-model", messages=[text_message("Hi.")], max_tokens=1)
    assert error.value.status_code == 404
    assert "does not exist" in str(error.value)


def test_server_stays_healthy_after_bad_input(client: openai.OpenAI, tiny_server: TinyServer) -> None:
    with pytest.raises(openai.BadRequestError):
        chat(client, tiny_server, [image_message("Describe it.", "data:image/png;base64,AAAA")])
    assert httpx.get(f"{tiny_server.root_url}/health", timeout=10).status_code == 200
    assert chat(client, tiny_server, [image_message("Describe it.", png_data_url(32, 32))]).choices


# --- security defaults ----------------------------------------------------------------------------------


def test_requests_without_the_api_key_are_refused(tiny_server: TinyServer) -> None:
    assert httpx.get(f"{tiny_server.base_url}/models", timeout=10).status_code == 401
    wrong_key = openai.OpenAI(base_url=tiny_server.base_url, api_key="wrong-key", max_retries=0, timeout=10)
    with pytest.raises(openai.AuthenticationError) as error:
        wrong_key.chat.completions.create(
            model=tiny_server.served_name, messages=[text_message("Hi.")], max_tokens=1
        )
    assert error.value.status_code == 401


def test_image_urls_outside_the_allowed_domains_are_not_fetched(
    client: openai.OpenAI, tiny_server: TinyServer
) -> None:
    with local_png_server() as local:
        with pytest.raises(openai.BadRequestError) as error:
            chat(client, tiny_server, [image_message("Describe it.", local.url)])
        assert error.value.status_code == 400
        assert "allowed domains" in str(error.value)
        assert local.requested_paths == [], "vLLM fetched the image anyway"
        # The URL did work: the refusal is vLLM's policy, not an unreachable server.
        assert httpx.get(local.url, timeout=10).status_code == 200
