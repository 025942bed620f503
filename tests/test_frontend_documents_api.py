"""A PDF sent straight to vLLM (our tiny profile, no page in between): what vLLM answers, pinned. vLLM has no
document input, so an API client that wants PDF pages read renders them itself, as the page does."""

from __future__ import annotations

import base64

import httpx
import openai
import pytest

from tests.conftest import TinyServer
from tests.helpers.images import image_message
from tests.helpers.pdfs import pdf_bytes

pytestmark = pytest.mark.vllm


@pytest.mark.parametrize(
    ("data", "mime"),
    [
        (pdf_bytes(2), "application/pdf"),
        (pdf_bytes(2), "image/png"),
        (pdf_bytes(1, password="secret"), "image/png"),
    ],
    ids=["as-application-pdf", "named-as-png", "encrypted-named-as-png"],
)
def test_a_pdf_as_an_image_url_gets_vllms_400_and_the_server_stays_healthy(
    data: bytes, mime: str, tiny_server: TinyServer
) -> None:
    client = openai.OpenAI(
        base_url=tiny_server.base_url, api_key=tiny_server.api_key, max_retries=0, timeout=120
    )
    url = f"data:{mime};base64,{base64.b64encode(data).decode()}"
    with pytest.raises(openai.BadRequestError) as error:
        client.chat.completions.create(
            model=tiny_server.served_name, messages=[image_message("Read this.", url)], max_tokens=4
        )
    assert error.value.status_code == 400
    assert "cannot identify image file" in str(error.value)
    assert httpx.get(f"{tiny_server.root_url}/health", timeout=10).status_code == 200
