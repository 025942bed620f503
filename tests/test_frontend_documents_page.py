"""PDFs in the chat page (AppTest) against the real tiny vLLM: pages sent as images within the server's image
limit, thumbnails, the Pages picker, each bad PDF refused with the typed text and the chat kept; and a
scanned table answered in Markdown and LaTeX (a stand-in server: the random tiny model cannot write one)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from frontend.markdown import IMAGE_SIGN, plain_text
from tests.conftest import TinyServer
from tests.helpers.images import image_bytes
from tests.helpers.page import File, saved, send, start_page, stats_lines
from tests.helpers.pdfs import pdf_bytes, scanned_pdf, zero_page_pdf
from tests.helpers.standin_server import StandIn, standin_server

pytestmark = pytest.mark.vllm

# Two pages of 256 tokens fit the tiny server's 2048-token context with room for the answer.
PAGE_BUDGET = "256"


def pdf(name: str, data: bytes) -> File:
    return (name, data, "application/pdf")


def open_page(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, server: Any, **variables: str) -> AppTest:
    endpoint = {
        "name": "Tiny A",
        "base_url": server.base_url,
        "api_key": server.api_key,
        "image_limit": server.image_limit,
    }
    return start_page(
        monkeypatch, tmp_path / "data", [endpoint], FRONTEND_IMAGE_TOKEN_BUDGET=PAGE_BUDGET, **variables
    )


def captions(message: Any) -> list[str]:
    return [image.captions[0] for image in message.get("image")]


def pages_field(page: AppTest) -> Any:
    return page.text_input(key="pdf-pages")


def test_a_pdf_sends_its_first_pages_then_the_picked_range_with_thumbnails_and_answers(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_server: TinyServer
) -> None:
    page = open_page(monkeypatch, tmp_path, tiny_server)
    send(page, "Summarise the report.", pdf("report.pdf", pdf_bytes(5)))

    user, assistant = page.chat_message
    assert [caption.split(" · ")[:2] for caption in captions(user)] == [
        ["report.pdf", "page 1"],
        ["report.pdf", "page 2"],
    ]
    assert all(caption.endswith(" tokens") for caption in captions(user))
    [notice] = [info.value for info in user.info]
    assert notice.startswith(
        "report.pdf: pages 1–2 of 5 sent, one image each. Tiny A takes at most 2 image(s)"
    )
    assert "pages 3–5 were not sent" in notice and "**Pages** (e.g. 3-4)" in notice
    [stats] = stats_lines(assistant)
    assert f"`{tiny_server.served_name}`" in stats and assistant.markdown[0].value  # a streamed answer
    assert "report.pdf (5 pages) is attached: page(s) 1–2 were sent" in page.info[-1].value
    assert pages_field(page).value == ""

    pages_field(page).set_value("4-5").run()
    send(page, "And the last two?")
    second = page.chat_message[2]
    assert [caption.split(" · ")[1] for caption in captions(second)] == ["page 4", "page 5"]
    assert [info.value for info in second.info] == ["report.pdf: pages 4–5 of 5 sent, one image each."]
    assert stats_lines(page.chat_message[3])  # answered: four pages in the chat, two per request
    assert "the 2 oldest image(s) of this chat were left out" in page.chat_message[3].info[0].value
    assert pages_field(page).value == ""  # ready for the next range

    conversation = saved(tmp_path / "data", page)
    assert [image.name for image in conversation.messages[2].images] == [
        "report.pdf · page 4",
        "report.pdf · page 5",
    ]
    assert conversation.messages[2].images[0].tokens <= int(PAGE_BUDGET)

    send(page, "Thanks.")  # no range typed: nothing more of the PDF is sent
    assert not page.chat_message[4].get("image")


def test_an_image_and_a_pdf_share_the_image_limit(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_server: TinyServer
) -> None:
    page = open_page(monkeypatch, tmp_path, tiny_server)
    picture = ("chart.png", image_bytes(320, 240), "image/png")
    send(page, "Compare.", picture, pdf("report.pdf", pdf_bytes(3)))
    user = page.chat_message[0]
    assert [caption.split(" · ")[0] for caption in captions(user)] == ["chart.png", "report.pdf"]
    assert (
        "takes at most 2 image(s) per message (this one also has 1 other image(s)), so pages 2–3 were not sent"
        in (user.info[0].value)
    )
    assert stats_lines(page.chat_message[1])


def test_500_pages_send_the_first_two_and_a_20000_point_page_renders_at_the_budget(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_server: TinyServer
) -> None:
    page = open_page(monkeypatch, tmp_path, tiny_server)
    send(page, "Long one.", pdf("manual.pdf", pdf_bytes(500)))
    assert len(captions(page.chat_message[0])) == 2
    assert "pages 1–2 of 500 sent" in page.chat_message[0].info[0].value

    send(page, "A poster.", pdf("poster.pdf", pdf_bytes(1, size=(20000, 20000))))
    [caption] = captions(page.chat_message[2])
    assert caption == "poster.pdf · page 1 · 512×512 · 256 tokens"
    assert "page 1 of 1, 20000×20000 pt rendered at 2 dpi" in [c.value for c in page.chat_message[2].caption]
    assert stats_lines(page.chat_message[3])


BAD_PDFS = {
    "encrypted": (
        pdf_bytes(2, password="secret"),
        "locked.pdf is encrypted (password-protected); the page does not ask for passwords.",
    ),
    "corrupt": (pdf_bytes(3)[:200], "locked.pdf is truncated or corrupt"),
    "zero-pages": (zero_page_pdf(), "locked.pdf has no pages"),
    "not-a-pdf": (b"just some text", "locked.pdf is not a PDF (it has no PDF header)"),
}


@pytest.mark.parametrize("kind", BAD_PDFS)
def test_a_bad_pdf_is_refused_with_the_text_kept_and_the_chat_intact(
    kind: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_server: TinyServer
) -> None:
    data, message = BAD_PDFS[kind]
    page = open_page(monkeypatch, tmp_path, tiny_server)
    send(page, "First question.")
    before = saved(tmp_path / "data", page).messages

    send(page, "What does it say?", pdf("locked.pdf", data))
    [error] = page.error
    assert error.value.startswith(message)  # the rest (what to do) is pinned in test_frontend_documents.py
    assert page.chat_input[0].value == "What does it say?"  # the text is back in the input
    assert len(page.chat_message) == 2 and saved(tmp_path / "data", page).messages == before
    assert not page.text_input  # nothing attached


@pytest.mark.parametrize(
    ("typed", "message"),
    [
        ("4-9", "The PDF has pages 1-5; 4-9 is outside them: type pages within 1-5."),
        ("five", "“five” is not a list of pages"),
    ],
)
def test_a_bad_page_range_is_refused_with_the_text_and_the_range_kept(
    typed: str, message: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_server: TinyServer
) -> None:
    page = open_page(monkeypatch, tmp_path, tiny_server)
    send(page, "Read it.", pdf("report.pdf", pdf_bytes(5)))
    pages_field(page).set_value(typed).run()
    send(page, "Now these pages.")
    assert page.error[0].value.startswith(message)
    assert page.chat_input[0].value == "Now these pages."
    assert pages_field(page).value == typed
    assert len(page.chat_message) == 2  # nothing sent


def test_a_pdf_that_cannot_be_sent_yet_stays_attached_and_goes_with_the_next_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_server: TinyServer
) -> None:
    page = open_page(monkeypatch, tmp_path, tiny_server)
    pictures = [(f"p{i}.png", image_bytes(320, 240), "image/png") for i in range(2)]
    send(page, "Look.", *pictures, pdf("report.pdf", pdf_bytes(3)))
    assert page.error[0].value.startswith("No room for pages of report.pdf: Tiny A takes at most 2 image(s)")
    assert page.chat_input[0].value == "Look." and not page.chat_message
    assert "report.pdf (3 pages) is attached: its first pages" in page.info[-1].value

    page.button(key="discard-pending").click().run()
    send(page, "Look.")
    assert [caption.split(" · ")[1] for caption in captions(page.chat_message[0])] == ["page 1", "page 2"]

    page.button(key="detach-pdf").click().run()
    assert not page.text_input


def test_a_pdf_name_with_markup_loads_nothing(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, tiny_server: TinyServer
) -> None:
    page = open_page(monkeypatch, tmp_path, tiny_server)
    name = "**Q3** ![x](http://127.0.0.1:9/x.png).pdf"
    send(page, "Read it.", pdf(name, pdf_bytes(1)))
    [notice] = page.chat_message[0].info
    # Drawn like an answer: the Markdown image in the name is a link after a sign, nothing loads by itself.
    assert (
        notice.value
        == f"**Q3** {IMAGE_SIGN}[x](http://127.0.0.1:9/x.png).pdf: page 1 of 1 sent, one image each."
    )
    assert (
        page.chat_message[0].get("image")[0].captions[0].startswith(plain_text(name))
    )  # the thumbnail: as text


def test_a_scanned_table_is_answered_in_markdown_and_latex(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    answer = (
        "| Quarter | Revenue |\n|---|---|\n| Q1 | 10 |\n\n"
        r"Growth is \( \frac{12 - 10}{10} = 20\% \), and \[ \sum_{q} r_q = 22 \]"
    )
    standin = StandIn(model="qwen3-vl-8b", reply=lambda messages: answer, token_delay_s=0.0)
    with standin_server(standin) as base_url:
        endpoint = {"name": "8B", "base_url": base_url, "api_key": "unused", "image_limit": 4}
        page = start_page(monkeypatch, tmp_path / "data", [endpoint], FRONTEND_MAX_TOKENS="200")
        send(
            page,
            "Transcribe the table.",
            pdf("scan.pdf", scanned_pdf([["Quarter", "Revenue"], ["Q1", "10"]])),
        )
    [sent] = [part for part in standin.requests[0]["messages"][-1]["content"] if part["type"] == "image_url"]
    assert sent["image_url"]["url"].startswith("data:image/")
    shown = page.chat_message[1].markdown[0].value
    assert shown.startswith("| Quarter | Revenue |\n|---|---|\n| Q1 | 10 |")
    assert r"$\frac{12 - 10}{10} = 20\%$" in shown and "$$\n\\sum_{q} r_q = 22\n$$" in shown
