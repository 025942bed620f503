"""The chat as data: conversations, messages, images and answers. No Streamlit here.

Everything the page shows and the database stores is one of these models, so a conversation survives a
reload, a restart and an export unchanged (`Conversation.model_validate_json(c.model_dump_json()) == c`).
"""

from __future__ import annotations

import base64
import time
import uuid
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, Field

DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.8  # Qwen's recommendation for the Instruct models
DEFAULT_MAX_TOKENS = 1024
DEFAULT_IMAGE_TOKEN_BUDGET = 1280  # Qwen's README suggests 256..1280 visual tokens per image
# The profiles' video budget (media-io-kwargs video.fps / max_frames, videos_kwargs size.longest_edge / 2048);
# the page prepares clips within it, and within each endpoint's max_video_tokens / max_video_frames.
VIDEO_FPS = 2.0
VIDEO_MAX_FRAMES = 16
DEFAULT_VIDEO_TOKEN_BUDGET = 1280


class ImageAttachment(BaseModel):
    """An image as it is sent: already oriented, flattened, resized to the budget and re-encoded."""

    name: str = Field(description="File name the user uploaded.")
    mime_type: Literal["image/jpeg", "image/png"] = Field(description="Encoding of `data_base64`.")
    data_base64: str = Field(description="The encoded image, base64 (what the data: URL carries).")
    width: int = Field(gt=0, description="Width in pixels as sent (a multiple of 32).")
    height: int = Field(gt=0, description="Height in pixels as sent (a multiple of 32).")
    original_width: int = Field(gt=0, description="Width of the uploaded image after EXIF rotation.")
    original_height: int = Field(gt=0, description="Height of the uploaded image after EXIF rotation.")
    tokens: int = Field(gt=0, description="Visual tokens the model spends on it (one per 32x32 pixels).")
    notes: list[str] = Field(
        default_factory=list, description="What preparation changed, e.g. 'first frame of an animated GIF'."
    )

    @property
    def data(self) -> bytes:
        return base64.b64decode(self.data_base64)

    @property
    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{self.data_base64}"


class VideoAttachment(BaseModel):
    """A video as it is sent: the frames the server keeps, resized to the budget, re-encoded as MP4."""

    name: str = Field(description="File name the user uploaded.")
    mime_type: Literal["video/mp4"] = Field(default="video/mp4", description="Encoding of `data_base64`.")
    data_base64: str = Field(description="The encoded clip, base64 (what the data: URL carries).")
    poster_base64: str = Field(description="Its first kept frame as a JPEG, base64 (shown in the chat).")
    width: int = Field(gt=0, description="Frame width as sent (a multiple of 32).")
    height: int = Field(gt=0, description="Frame height as sent (a multiple of 32).")
    original_width: int = Field(gt=0, description="Frame width of the upload, upright.")
    original_height: int = Field(gt=0, description="Frame height of the upload, upright.")
    duration_s: float = Field(ge=0, description="Length of the uploaded clip, seconds.")
    frames: int = Field(gt=0, description="Frames sent (what the model sees).")
    original_frames: int = Field(gt=0, description="Frames in the upload.")
    original_fps: float = Field(ge=0, description="Frame rate of the upload.")
    tokens: int = Field(gt=0, description="Prompt tokens the video costs (visual tokens and timestamps).")
    notes: list[str] = Field(
        default_factory=list, description="What was cut: frame rate, resolution, length."
    )

    @property
    def data(self) -> bytes:
        return base64.b64decode(self.data_base64)

    @property
    def poster(self) -> bytes:
        return base64.b64decode(self.poster_base64)

    @property
    def data_url(self) -> str:
        return f"data:{self.mime_type};base64,{self.data_base64}"

    def caption(self) -> str:
        """'clip.mp4 · 12.0 s · 24 frames · ~3,200 tokens' under the poster."""
        return f"{self.name} · {self.duration_s:,.1f} s · {self.frames} frames · ~{self.tokens:,} tokens"


class GenerationSettings(BaseModel):
    """What the user set in the sidebar; stored with the conversation so an export says how it was made."""

    system_prompt: str = Field(default="", description="Sent first as the system message; empty = none.")
    temperature: float = Field(
        default=DEFAULT_TEMPERATURE, ge=0.0, le=2.0, description="Sampling temperature."
    )
    top_p: float = Field(default=DEFAULT_TOP_P, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    max_tokens: int = Field(default=DEFAULT_MAX_TOKENS, ge=1, description="Longest answer, in tokens.")
    image_token_budget: int = Field(
        default=DEFAULT_IMAGE_TOKEN_BUDGET,
        ge=64,
        le=16384,
        description="Most visual tokens per image; larger images are downscaled to fit.",
    )


class AnswerStatus(StrEnum):
    STREAMING = "streaming"  # still arriving (or the page died while it was: see Conversation.recover)
    DONE = "done"
    STOPPED = "stopped"  # the user pressed stop; what arrived is kept
    INTERRUPTED = "interrupted"  # the connection or the server died mid-answer; what arrived is kept
    FAILED = "failed"  # nothing usable arrived; `error` says why


class AnswerStats(BaseModel):
    """What an answer cost, measured on the client from the stream and the server's usage report."""

    model: str | None = Field(default=None, description="Model id the server put in the response.")
    time_to_first_token_s: float | None = Field(default=None, description="Request sent -> first token.")
    total_time_s: float | None = Field(default=None, description="Request sent -> stream finished.")
    tokens_per_second: float | None = Field(
        default=None,
        description="Decode speed: tokens per second after the first (whole request for a one-burst answer).",
    )
    prompt_tokens: int | None = Field(default=None, description="Prompt tokens, images included (usage).")
    completion_tokens: int | None = Field(default=None, description="Generated tokens (usage).")
    switch_time_s: float | None = Field(
        default=None,
        description="Time the gateway took to switch to this model before answering; None = none.",
    )

    def summary(self) -> list[str]:
        """What is known, in words: ['0.21 s to first token', '85.2 tok/s', '120 prompt + 64 completion tokens']."""
        parts = []
        if self.switch_time_s is not None:
            parts.append(f"switched model in {self.switch_time_s:.1f} s")
        if self.time_to_first_token_s is not None:
            parts.append(f"{self.time_to_first_token_s:.2f} s to first token")
        if self.tokens_per_second is not None:
            parts.append(f"{self.tokens_per_second:.1f} tok/s")
        if self.prompt_tokens is not None and self.completion_tokens is not None:
            parts.append(f"{self.prompt_tokens:,} prompt + {self.completion_tokens:,} completion tokens")
        if self.total_time_s is not None:
            parts.append(f"{self.total_time_s:.1f} s in total")
        return parts


class Answer(BaseModel):
    """One model's reply to a user message."""

    endpoint: str = Field(description="Display name of the endpoint that was asked.")
    content: str = Field(default="", description="The answer, Markdown.")
    reasoning: str = Field(default="", description="Thinking, shown collapsed and never sent back.")
    status: AnswerStatus = Field(default=AnswerStatus.STREAMING, description="How the answer ended.")
    error: str | None = Field(default=None, description="Why it failed or was interrupted, for the page.")
    stats: AnswerStats = Field(default_factory=AnswerStats, description="Timing and token counts.")


def _new_id() -> str:
    return uuid.uuid4().hex


class Message(BaseModel):
    """A user turn (text + images) or an assistant turn (one answer, or one per endpoint in compare mode)."""

    id: str = Field(
        default_factory=_new_id,
        description="Stable id: the store updates and deletes turns by it, so concurrent tabs never clash.",
    )
    role: Literal["user", "assistant"]
    text: str = Field(default="", description="User text (empty for assistant turns).")
    images: list[ImageAttachment] = Field(default_factory=list, description="User images, in upload order.")
    videos: list[VideoAttachment] = Field(default_factory=list, description="User videos, in upload order.")
    answers: list[Answer] = Field(default_factory=list, description="Assistant answers, side by side.")
    notices: list[str] = Field(
        default_factory=list, description="Things the user should know about this turn, e.g. images left out."
    )

    def answer_from(self, endpoint: str) -> Answer | None:
        """The answer `endpoint` gave here, else the first one with content (what a follow-up builds on)."""
        usable = [answer for answer in self.answers if answer.content]
        own = [answer for answer in usable if answer.endpoint == endpoint]
        return (own or usable or [None])[0]


class Conversation(BaseModel):
    id: str = Field(default_factory=_new_id, description="Stable id; also the page's ?chat= URL parameter.")
    title: str = Field(default="New chat", description="Shown in the sidebar; from the first message.")
    created_at: float = Field(default_factory=time.time, description="Unix time of creation.")
    updated_at: float = Field(default_factory=time.time, description="Unix time of the last change.")
    endpoint: str | None = Field(default=None, description="Endpoint the user last picked for it.")
    settings: GenerationSettings = Field(default_factory=GenerationSettings, description="Sidebar settings.")
    messages: list[Message] = Field(default_factory=list, description="The turns, oldest first.")

    def touch(self) -> None:
        self.updated_at = time.time()

    def recover(self) -> bool:
        """Answers still marked streaming lost their stream (page reload, restart): mark them interrupted."""
        changed = False
        for message in self.messages:
            for answer in message.answers:
                if answer.status is AnswerStatus.STREAMING:
                    answer.status = AnswerStatus.INTERRUPTED
                    answer.error = (
                        answer.error or "The page was reloaded or restarted while this answer streamed."
                    )
                    changed = True
        return changed
