"""What a turn does to a conversation: add the user's message, prepare the answers, regenerate, delete or edit
turns. Each change is made to the conversation in memory and returns what the store must change with it.

Kept apart from the page so every rule here is tested without Streamlit.
"""

from __future__ import annotations

from collections.abc import Sequence

from frontend.answer_stream import AnswerJob, Target
from frontend.chat_request import TooManyImages, build_request, check_new_images, check_new_videos
from frontend.conversation import (
    DEFAULT_VIDEO_TOKEN_BUDGET,
    VIDEO_MAX_FRAMES,
    Answer,
    AnswerStatus,
    Conversation,
    ImageAttachment,
    Message,
    VideoAttachment,
)

TITLE_LENGTH = 48


class EmptyMessage(ValueError):
    """Nothing to send."""


def add_user_message(
    conversation: Conversation,
    text: str,
    images: Sequence[ImageAttachment],
    targets: Sequence[Target],
    videos: Sequence[VideoAttachment] = (),
) -> Message:
    """Append the user's message after checking every target can take it; raises before changing anything."""
    text = text.strip()
    if not text and not images and not videos:
        raise EmptyMessage("Type a message or attach an image first.")
    for target in targets:
        check_new_images(len(images), target.endpoint.name, target.endpoint.image_limit)
        check_new_videos(len(videos), target.endpoint.name, target.endpoint.video_limit)
    message = Message(role="user", text=text, images=list(images), videos=list(videos))
    if not any(turn.role == "user" for turn in conversation.messages):
        conversation.title = title_for(message)
    conversation.messages.append(message)
    conversation.touch()
    return message


def images_for_next_message(
    images: Sequence[ImageAttachment], targets: Sequence[Target], *, split: bool
) -> tuple[list[ImageAttachment], list[ImageAttachment]]:
    """(images to send now, images to keep for the next message). More than the targets take is refused
    the first time, so the user can choose; sent again (`split`), the first ones go and the rest wait."""
    limit = min((target.endpoint.image_limit for target in targets), default=len(images))
    if len(images) <= limit:
        return list(images), []
    if not split:
        names = ", ".join(target.endpoint.name for target in targets if target.endpoint.image_limit == limit)
        raise TooManyImages(
            f"{names} takes at most {limit} image(s) per message and this one has {len(images)}. "
            f"Send it again to send the first {limit} now and the rest with your next message, or discard them."
        )
    return list(images[:limit]), list(images[limit:])


def image_budget(requested: int, targets: Sequence[Target]) -> int:
    """Visual tokens per image to prepare for: what the user asked, within every target server's own cap
    (above it the server would downscale again and the cost shown would be wrong)."""
    caps = [target.endpoint.max_image_tokens for target in targets if target.endpoint.max_image_tokens]
    return min([requested, *caps])


def video_budget(targets: Sequence[Target]) -> dict[str, int]:
    """The video budget to prepare clips for: within every target server's token and frame caps."""
    tokens = [target.endpoint.max_video_tokens for target in targets if target.endpoint.max_video_tokens]
    frames = [target.endpoint.max_video_frames for target in targets if target.endpoint.max_video_frames]
    return {
        "token_budget": min([DEFAULT_VIDEO_TOKEN_BUDGET, *tokens]),
        "max_frames": min([VIDEO_MAX_FRAMES, *frames]),
    }


def title_for(message: Message) -> str:
    text = " ".join(message.text.split())
    if not text and message.videos and not message.images:
        return f"{len(message.videos)} video(s)"
    if not text:
        return f"{len(message.images)} image(s)"
    return text if len(text) <= TITLE_LENGTH else text[: TITLE_LENGTH - 1].rstrip() + "…"


def prepare_answers(
    conversation: Conversation, targets: Sequence[Target], *, timeout_s: float
) -> tuple[Message, list[AnswerJob]]:
    """Append one assistant turn with an answer per target (several = compare mode); returns it with one
    job per answer, not started yet (the turn is stored first, so each save of it finds its row)."""
    history = list(conversation.messages)
    if not history or history[-1].role != "user":
        raise ValueError("an answer needs a user message to answer")
    turn = Message(role="assistant", answers=[Answer(endpoint=target.endpoint.name) for target in targets])
    jobs = []
    for target, answer in zip(targets, turn.answers, strict=True):
        request = build_request(
            history,
            conversation.settings,
            endpoint=target.endpoint.name,
            image_limit=target.endpoint.image_limit,
            video_limit=target.endpoint.video_limit,
        )
        limits = (target.endpoint.image_limit, target.endpoint.video_limit)
        if notice := request.notice(target.endpoint.name, *limits):
            turn.notices.append(notice)
        jobs.append(
            AnswerJob(
                target=target,
                request=request,
                settings=conversation.settings.model_copy(),
                answer=answer,
                timeout_s=timeout_s,
                session_id=conversation.id,
            )
        )
    conversation.messages.append(turn)
    conversation.touch()
    return turn, jobs


def drop_last_answer(conversation: Conversation) -> Message | None:
    """Remove the last assistant turn so it can be asked again; None when there is none to redo."""
    if len(conversation.messages) < 2 or conversation.messages[-1].role != "assistant":
        return None
    conversation.touch()
    return conversation.messages.pop()


def unanswered(conversation: Conversation) -> bool:
    """The last turn is the user's, with no answer after it (its answer was deleted, or never came)."""
    return bool(conversation.messages) and conversation.messages[-1].role == "user"


def delete_turn(conversation: Conversation, message_id: str) -> list[str]:
    """Remove a turn: an answer alone, a user message with the answer to it. Returns the ids removed."""
    index = next((i for i, message in enumerate(conversation.messages) if message.id == message_id), None)
    if index is None:
        return []
    end = index + 1
    if conversation.messages[index].role == "user" and end < len(conversation.messages):
        end += conversation.messages[end].role == "assistant"
    removed = [message.id for message in conversation.messages[index:end]]
    del conversation.messages[index:end]
    conversation.touch()
    return removed


def last_user_message(conversation: Conversation) -> Message | None:
    return next((message for message in reversed(conversation.messages) if message.role == "user"), None)


def edit_last_user_message(
    conversation: Conversation, text: str, keep_images: Sequence[int]
) -> tuple[Message, list[str]]:
    """Rewrite the user's last message (its text; the images at the `keep_images` positions stay) and remove
    what answered it, ready to be answered again. Returns the edited message and the ids removed."""
    message = last_user_message(conversation)
    if message is None:
        raise EmptyMessage("There is no message of yours to edit.")
    images = [image for position, image in enumerate(message.images) if position in set(keep_images)]
    text = text.strip()
    if not text and not images and not message.videos:
        raise EmptyMessage("Type a message or keep an image: an empty message cannot be sent.")
    index = conversation.messages.index(message)
    removed = [later.id for later in conversation.messages[index + 1 :]]
    del conversation.messages[index + 1 :]
    message.text, message.images = text, images
    if index == next(i for i, turn in enumerate(conversation.messages) if turn.role == "user"):
        conversation.title = title_for(message)
    conversation.touch()
    return message, removed


def finish(jobs: Sequence[AnswerJob], *, grace_s: float = 2.0) -> None:
    """Stop whatever still streams; keep what arrived."""
    for job in jobs:
        job.stop()
    for job in jobs:
        job.wait(grace_s)
        if job.answer.status is AnswerStatus.STREAMING:  # its thread did not end in time
            job.answer.status = AnswerStatus.STOPPED


def image_for_answer(conversation: Conversation, turn_index: int) -> ImageAttachment | None:
    """The image a question was about: the most recent one sent up to that turn."""
    for message in reversed(conversation.messages[:turn_index]):
        if message.images:
            return message.images[-1]
    return None
