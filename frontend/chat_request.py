"""The OpenAI request for the next answer, built from the conversation so far.

vLLM counts every image (and every video) of the whole request against its per-prompt limits, history
included, so a long chat with images breaks other frontends after a few turns. Here the most recent images
and videos stay in context and older ones are replaced by a short text, with a notice for the user.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, Field

from frontend.conversation import GenerationSettings, Message

LEFT_OUT_IMAGE = "[an earlier image, no longer shown to the model]"
LEFT_OUT_VIDEO = "[an earlier video, no longer shown to the model]"


class TooManyImages(ValueError):
    """The new message alone has more images than the endpoint takes."""


class ChatRequest(BaseModel):
    messages: list[dict[str, Any]] = Field(description="OpenAI chat messages, system prompt first.")
    images_sent: int = Field(description="Images included in the request.")
    images_left_out: int = Field(description="Older images replaced by text to respect the limit.")
    videos_sent: int = Field(default=0, description="Videos included in the request.")
    videos_left_out: int = Field(default=0, description="Older videos replaced by text to respect the limit.")

    def notice(self, endpoint: str, image_limit: int, video_limit: int = 0) -> str | None:
        said = []
        if self.images_left_out:
            said.append(
                f"{endpoint} takes at most {image_limit} image(s) per request: the "
                f"{self.images_left_out} oldest image(s) of this chat were left out of its context."
            )
        if self.videos_left_out:
            said.append(
                f"{endpoint} takes at most {video_limit} video(s) per request: the "
                f"{self.videos_left_out} oldest video(s) of this chat were left out of its context."
            )
        return " ".join(said) or None


def check_new_images(count: int, endpoint: str, image_limit: int) -> None:
    """Refuse a message that could never be sent, before it enters the history."""
    if count > image_limit:
        raise TooManyImages(
            f"{endpoint} takes at most {image_limit} image(s) per message and this one has {count}: "
            "send them over several messages."
        )


def check_new_videos(count: int, endpoint: str, video_limit: int) -> None:
    """The same for videos (the profiles take one per request)."""
    if count > video_limit:
        what = "no videos" if video_limit == 0 else f"at most {video_limit} video(s) per message"
        raise TooManyImages(
            f"{endpoint} takes {what} and this message has {count}: send them over several messages."
        )


def build_request(
    history: Sequence[Message],
    settings: GenerationSettings,
    *,
    endpoint: str,
    image_limit: int,
    video_limit: int = 0,
) -> ChatRequest:
    """Messages for `endpoint`: its own earlier answers (others' in compare mode), no reasoning."""
    keep = _images_to_keep(history, image_limit)
    keep_videos = _latest(history, video_limit, lambda message: len(message.videos))
    videos_sent = videos_left_out = 0
    messages: list[dict[str, Any]] = []
    if settings.system_prompt.strip():
        messages.append({"role": "system", "content": settings.system_prompt})
    sent = left_out = 0
    for index, message in enumerate(history):
        if message.role == "assistant":
            if answer := message.answer_from(endpoint):
                messages.append({"role": "assistant", "content": answer.content})
            continue
        parts: list[dict[str, Any]] = []
        for position, video in enumerate(message.videos):
            if (index, position) in keep_videos:
                parts.append({"type": "video_url", "video_url": {"url": video.data_url}})
                videos_sent += 1
            else:
                parts.append({"type": "text", "text": LEFT_OUT_VIDEO})
                videos_left_out += 1
        for position, image in enumerate(message.images):
            if (index, position) in keep:
                parts.append({"type": "image_url", "image_url": {"url": image.data_url}})
                sent += 1
            else:
                parts.append({"type": "text", "text": LEFT_OUT_IMAGE})
                left_out += 1
        if message.text:
            parts.append({"type": "text", "text": message.text})
        messages.append({"role": "user", "content": parts})
    return ChatRequest(
        messages=messages,
        images_sent=sent,
        images_left_out=left_out,
        videos_sent=videos_sent,
        videos_left_out=videos_left_out,
    )


def _images_to_keep(history: Sequence[Message], image_limit: int) -> set[tuple[int, int]]:
    """(message index, image index) of the `image_limit` most recent images."""
    return _latest(history, image_limit, lambda message: len(message.images))


def _latest(history: Sequence[Message], limit: int, count: Callable[[Message], int]) -> set[tuple[int, int]]:
    """(message index, position) of the `limit` most recent items that `count` counts per user message."""
    every = [
        (index, position)
        for index, message in enumerate(history)
        if message.role == "user"
        for position in range(count(message))
    ]
    return set(every[max(0, len(every) - limit) :]) if limit else set()
