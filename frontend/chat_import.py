"""A chat exported as JSON (`export.export_json`) back into the page, as a new chat. No Streamlit here.

The file is untrusted: it must be UTF-8 JSON that validates as a Conversation, every image must be the
complete JPEG or PNG it claims to be (every video an MP4 that decodes), and it gets a new id (importing twice, or next to the original, keeps
both). Its text is shown like any other (images in Markdown become links, markup in titles is escaped).
"""

from __future__ import annotations

import json
import time
import uuid

from pydantic import ValidationError

from frontend.conversation import Conversation
from frontend.images import ImageRejected, check_attachment
from frontend.videos import VideoError
from frontend.videos import check_attachment as check_video


class ImportRejected(ValueError):
    """The file is not a chat this page exported; the message says what is wrong and what to do."""


_NOT_AN_EXPORT = "Choose a file saved with the JSON button under “This chat”."


def import_chat(data: bytes, *, max_bytes: int) -> Conversation:
    """The exported conversation, ready to store: a new id, updated now, answers cut by a restart marked."""
    if not data:
        raise ImportRejected(f"The file is empty. {_NOT_AN_EXPORT}")
    if len(data) > max_bytes:
        raise ImportRejected(
            f"The file is {len(data) / 2**20:.1f} MB; the page imports at most {max_bytes / 2**20:.0f} MB "
            "(FRONTEND_MAX_UPLOAD_MB)."
        )
    try:
        fields = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError as error:
        raise ImportRejected(f"The file is not text (not UTF-8). {_NOT_AN_EXPORT}") from error
    except json.JSONDecodeError as error:
        raise ImportRejected(
            f"The file is not valid JSON (line {error.lineno}, column {error.colno}: {error.msg}). {_NOT_AN_EXPORT}"
        ) from error
    try:
        conversation = Conversation.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "the top level"
        raise ImportRejected(
            f"The file is JSON but not a chat export ({where}: {first['msg']}; {error.error_count()} problem(s) "
            f"in all). {_NOT_AN_EXPORT}"
        ) from error
    for message in conversation.messages:
        for image in message.images:
            try:
                check_attachment(image)
            except ImageRejected as error:
                raise ImportRejected(
                    f"The chat holds a broken image: {error} Nothing was imported."
                ) from error
        for video in message.videos:
            try:
                check_video(video)
            except VideoError as error:
                raise ImportRejected(
                    f"The chat holds a broken video: {error} Nothing was imported."
                ) from error
    conversation.recover()
    return conversation.model_copy(update={"id": uuid.uuid4().hex, "updated_at": time.time()})
