"""A conversation as a download: JSON to keep or re-import, Markdown to read. No Streamlit here.

The JSON export is the stored model itself, so `Conversation.model_validate_json(export_json(c)) == c`.
The Markdown transcript reproduces user texts, answers and reasoning verbatim (they are Markdown already,
and an export should show what the model wrote, so LaTeX keeps its `\\(...\\)` too); only the lines this
module writes around them (title, names, notices, errors) are escaped or put in code. A viewer that renders
raw HTML renders HTML written in an answer, as it would in any Markdown file. Neither export holds secrets:
API keys live in the settings, never in a Conversation.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import UTC, datetime

from frontend.conversation import (
    Answer,
    AnswerStatus,
    Conversation,
    ImageAttachment,
    Message,
    VideoAttachment,
)
from frontend.markdown import closing_fence, code_span, plain_text

_MAX_NAME_CHARS = 60  # of the title, in the file name: readable, and far below file system limits


def export_json(conversation: Conversation) -> bytes:
    """The whole conversation, images included (base64), as indented UTF-8 JSON."""
    return conversation.model_dump_json(indent=2).encode("utf-8")


def export_markdown(conversation: Conversation) -> str:
    """A readable transcript: title, settings, then every turn with its images, answers and notices."""
    settings = conversation.settings
    lines = [
        f"# {plain_text(conversation.title) or 'Conversation'}",
        "",
        f"- Created: {_when(conversation.created_at)}; last changed: {_when(conversation.updated_at)}",
    ]
    if conversation.endpoint:
        lines.append(f"- Endpoint: {plain_text(conversation.endpoint)}")
    lines.append(
        f"- Settings: temperature {settings.temperature:g}, top-p {settings.top_p:g}, "
        f"max tokens {settings.max_tokens}, image token budget {settings.image_token_budget}"
    )
    if settings.system_prompt.strip():
        lines += ["- System prompt:", "", _quote(settings.system_prompt)]
    for message in conversation.messages:
        while lines and not lines[-1]:
            lines.pop()
        lines += ["", "---", ""]
        lines += _user_turn(message) if message.role == "user" else _assistant_turn(message)
    return "\n".join(lines).rstrip("\n") + "\n"


def export_file_name(conversation: Conversation, extension: str) -> str:
    """A file name from the title and the creation date (UTC), e.g. "cat-photo-2026-11-28.json".

    Letters and digits of any script are kept (Streamlit sends non-ASCII names RFC 5987-encoded); everything
    else, path separators and characters Windows forbids included, becomes a single "-".
    """
    suffix = extension.removeprefix(".")
    if not re.fullmatch(r"[A-Za-z0-9]+", suffix):
        raise ValueError(f"extension must be letters and digits, e.g. 'json' or 'md', got {extension!r}")
    title = unicodedata.normalize("NFKC", conversation.title).lower()
    slug = re.sub(r"-+", "-", "".join(char if char.isalnum() else "-" for char in title)).strip("-")
    slug = slug[:_MAX_NAME_CHARS].rstrip("-") or "conversation"
    date = datetime.fromtimestamp(conversation.created_at, tz=UTC).strftime("%Y-%m-%d")
    return f"{slug}-{date}.{suffix}"


def _user_turn(message: Message) -> list[str]:
    lines = ["## User", ""]
    if message.text.strip():
        lines += [_closed(message.text), ""]
    if message.images:
        lines += ["Images:", ""]
        lines += [_image_line(image) for image in message.images]
        lines.append("")
    if message.videos:
        lines += ["Videos:", ""]
        lines += [_video_line(video) for video in message.videos]
        lines.append("")
    lines += _notices(message)
    return lines


def _assistant_turn(message: Message) -> list[str]:
    lines = ["## Assistant", ""]
    for answer in message.answers:
        lines += _answer(answer)
    if not message.answers:
        lines += ["*No answer.*", ""]
    lines += _notices(message)
    return lines


def _answer(answer: Answer) -> list[str]:
    model = f" (model {code_span(answer.stats.model)})" if answer.stats.model else ""
    lines = [f"### {plain_text(answer.endpoint)}{model}", ""]
    if answer.status is not AnswerStatus.DONE:
        lines += [f"**Status: {answer.status.value}**", ""]
    if answer.error:
        lines += ["**Error:**", "", _code_block(answer.error), ""]
    if answer.reasoning.strip():
        # HTML block: Markdown inside renders only with the blank lines around it; a literal closing tag in
        # the reasoning would end the block early, so it is defused.
        reasoning = re.sub(r"</(details)", r"&lt;/\1", _closed(answer.reasoning), flags=re.IGNORECASE)
        lines += ["<details>", "<summary>Reasoning</summary>", "", reasoning, "", "</details>", ""]
    if answer.content.strip():
        lines += [_closed(answer.content), ""]
    stats = " · ".join(answer.stats.summary())
    if stats:
        lines += [f"*{stats}*", ""]
    return lines


def _image_line(image: ImageAttachment) -> str:
    size = f"{image.width}×{image.height} px as sent"
    if (image.original_width, image.original_height) != (image.width, image.height):
        size += f" (uploaded {image.original_width}×{image.original_height})"
    notes = "".join(f"; {plain_text(note)}" for note in image.notes)
    return f"- {code_span(image.name)}: {size}, {image.tokens} tokens{notes}"


def _video_line(video: VideoAttachment) -> str:
    sent = f"{video.frames} frames at {video.width}×{video.height} px as sent"
    notes = "".join(f"; {plain_text(note)}" for note in video.notes)
    return f"- {code_span(video.name)}: {video.duration_s:g} s, {sent}, {video.tokens} tokens{notes}"


def _notices(message: Message) -> list[str]:
    return [line for notice in message.notices for line in (f"> **Note:** {plain_text(notice)}", "")]


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def _closed(markdown: str) -> str:
    """`markdown` with a code fence it leaves open (a stopped answer) closed, so it cannot swallow the rest."""
    markdown = markdown.rstrip()
    fence = closing_fence(markdown)
    return f"{markdown}\n{fence}" if fence else markdown


def _code_block(text: str) -> str:
    """Plain text, e.g. an error message, as a fenced block that no backtick run in it can close."""
    fence = "`" * max(3, max((len(run) + 1 for run in re.findall(r"`{3,}", text)), default=0))
    return f"{fence}text\n{text.strip()}\n{fence}"


def _quote(text: str) -> str:
    """`text` as a block quote (every line prefixed, so blank lines do not end it)."""
    return "\n".join(f"> {line}".rstrip() for line in text.strip().splitlines())
