"""Downloads of a conversation: JSON that imports back unchanged, a readable Markdown transcript, file names."""

from __future__ import annotations

import base64
import json
import re

import pytest

from frontend.conversation import (
    Answer,
    AnswerStats,
    AnswerStatus,
    Conversation,
    GenerationSettings,
    ImageAttachment,
    Message,
)
from frontend.export import export_file_name, export_json, export_markdown

CREATED = 1_795_860_000.0  # 2026-11-28 10:00 UTC


def image(name: str, *, width: int = 640, height: int = 480) -> ImageAttachment:
    return ImageAttachment(
        name=name,
        mime_type="image/jpeg",
        data_base64=base64.b64encode(bytes(range(256)) * 8).decode(),
        width=width,
        height=height,
        original_width=4032,
        original_height=3024,
        tokens=width * height // 1024,
        notes=["first frame of an animated GIF"],
    )


def conversation() -> Conversation:
    return Conversation(
        title="Cat photo 🐱",
        created_at=CREATED,
        updated_at=CREATED + 600,
        endpoint="Qwen3-VL-8B",
        settings=GenerationSettings(system_prompt="Answer in one sentence.", temperature=0.3),
        messages=[
            Message(role="user", text="What animal is this?", images=[image("cat.jpg"), image("sofa.jpg")]),
            Message(
                role="assistant",
                answers=[
                    Answer(
                        endpoint="Qwen3-VL-8B",
                        content="It is a **cat** on a sofa.",
                        reasoning="Whiskers and pointed ears: a cat.",
                        status=AnswerStatus.DONE,
                        stats=AnswerStats(
                            model="qwen3-vl-8b-instruct",
                            time_to_first_token_s=0.42,
                            total_time_s=2.5,
                            tokens_per_second=41.3,
                            prompt_tokens=640,
                            completion_tokens=12,
                        ),
                    ),
                    Answer(
                        endpoint="Qwen3-VL-4B",
                        content="Here is code:\n```python\nprint('cat')",  # stopped inside a code block
                        status=AnswerStatus.STOPPED,
                        stats=AnswerStats(model="qwen3-vl-4b-instruct"),
                    ),
                ],
                notices=["sofa.jpg was left out: the 4B server takes 1 image per request."],
            ),
            Message(role="user", text="Why did it fail?"),
            Message(
                role="assistant",
                answers=[
                    Answer(endpoint="Qwen3-VL-8B", status=AnswerStatus.FAILED, error="Server said: HTTP 503")
                ],
            ),
        ],
    )


def test_json_round_trips_exactly_with_images() -> None:
    original = conversation()
    exported = export_json(original)

    assert Conversation.model_validate_json(exported) == original
    body = json.loads(exported.decode("utf-8"))
    assert body["messages"][0]["images"][0]["data_base64"] == original.messages[0].images[0].data_base64
    assert "Cat photo 🐱" in exported.decode("utf-8"), "UTF-8 text, not \\u escapes"
    assert exported.startswith(b'{\n  "id"'), "pretty-printed"


def test_markdown_transcript_has_the_conversation() -> None:
    text = export_markdown(conversation())

    assert text.startswith("# Cat photo 🐱\n")
    assert "Created: 2026-11-28 10:00 UTC; last changed: 2026-11-28 10:10 UTC" in text
    assert "temperature 0.3" in text
    assert "Answer in one sentence." in text
    for expected in ("What animal is this?", "It is a **cat** on a sofa.", "Why did it fail?"):
        assert expected in text
    assert "`qwen3-vl-8b-instruct`" in text
    assert "`qwen3-vl-4b-instruct`" in text
    assert "### Qwen3-VL-8B" in text and "### Qwen3-VL-4B" in text
    assert (
        "- `cat.jpg`: 640×480 px as sent (uploaded 4032×3024), 300 tokens; first frame of an animated GIF"
        in text
    )
    assert "`sofa.jpg`" in text
    assert "sofa.jpg was left out" in text
    assert "0.42 s to first token · 41.3 tok/s · 640 prompt + 12 completion tokens · 2.5 s in total" in text
    assert "HTTP 503" in text


def test_markdown_puts_reasoning_in_a_details_block() -> None:
    text = export_markdown(conversation())
    details = re.search(r"<details>\n<summary>Reasoning</summary>\n\n(.*?)\n\n</details>", text, re.DOTALL)
    assert details is not None
    assert details.group(1) == "Whiskers and pointed ears: a cat."
    assert "It is a **cat**" not in details.group(1)


def test_markdown_shows_the_status_only_when_not_done() -> None:
    text = export_markdown(conversation())
    assert text.count("**Status: stopped**") == 1
    assert text.count("**Status: failed**") == 1
    assert "**Status: done**" not in text
    stopped = text.index("### Qwen3-VL-4B")
    assert text.index("**Status: stopped**", stopped) < text.index("Here is code:", stopped)


def test_markdown_closes_a_code_block_a_stopped_answer_left_open() -> None:
    text = export_markdown(conversation())
    stopped = text[text.index("### Qwen3-VL-4B") :]
    assert "```python\nprint('cat')\n```\n" in stopped
    # Every fence is closed, so the notice and the next turn are not swallowed into the code block.
    assert len(re.findall(r"^```", text, re.MULTILINE)) % 2 == 0


def test_markdown_keeps_markup_of_titles_and_names_from_rendering() -> None:
    chat = Conversation(
        title="<script>alert(1)</script> *bold*",
        created_at=CREATED,
        messages=[
            Message(role="user", images=[image("`odd` name.jpg")]),
            Message(
                role="assistant",
                answers=[
                    Answer(endpoint="A", reasoning="x </details> y", content="z", status=AnswerStatus.DONE)
                ],
            ),
        ],
    )
    text = export_markdown(chat)
    assert text.startswith(r"# \<script\>alert(1)\</script\> \*bold\*")
    assert "<script>" not in text
    assert "- `` `odd` name.jpg ``:" in text
    # A closing tag inside the reasoning must not end the details block early.
    assert text.count("</details>") == 1
    assert text.index("x &lt;/details> y") < text.index("</details>")


def test_file_name_from_title_and_creation_date() -> None:
    assert export_file_name(conversation(), "json") == "cat-photo-2026-11-28.json"
    assert export_file_name(conversation(), ".md") == "cat-photo-2026-11-28.md"


@pytest.mark.parametrize(
    ("title", "expected"),
    [
        ("a/b:c*?", "a-b-c-2026-11-28.md"),
        ('..\\..\\etc/passwd <"|>', "etc-passwd-2026-11-28.md"),
        ("Café über 猫の写真", "café-über-猫の写真-2026-11-28.md"),
        ("?!*", "conversation-2026-11-28.md"),
        ("", "conversation-2026-11-28.md"),
    ],
)
def test_file_name_is_safe(title: str, expected: str) -> None:
    name = export_file_name(Conversation(title=title, created_at=CREATED), "md")
    assert name == expected
    assert not set(name) & set('/\\:*?"<>|'), "nothing a file system refuses or reads as a path"


def test_file_name_of_a_long_title_is_shortened() -> None:
    name = export_file_name(Conversation(title="word " * 100, created_at=CREATED), "json")
    assert len(name) <= 60 + len("-2026-11-28.json")
    assert name.startswith("word-word-") and name.endswith("-2026-11-28.json")
    assert "--" not in name


def test_file_name_refuses_an_odd_extension() -> None:
    with pytest.raises(ValueError, match="extension"):
        export_file_name(conversation(), "json/../x")
