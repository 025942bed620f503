"""The chat page: talk to Qwen3-VL 8B / 4B with text and images, one model or both side by side.

Run from the repository root with `streamlit run frontend/app.py` (the image runs `streamlit run app.py`).
Configuration: FRONTEND_* environment variables, see frontend/settings.py and the README.
"""

import sys
from pathlib import Path

# `streamlit run` puts this file's folder on sys.path, not its parent; the parent makes `frontend.*` importable.
if (_root := str(Path(__file__).resolve().parent.parent)) not in sys.path:
    sys.path.insert(0, _root)

import streamlit as st

from frontend.chat_request import TooManyImages
from frontend.chat_turns import (
    EmptyMessage,
    add_user_message,
    drop_last_answer,
    image_budget,
    image_for_answer,
    images_for_next_message,
    start_answers,
)
from frontend.conversation import AnswerStatus, Conversation, GenerationSettings
from frontend.images import ImageRejected, prepare_image
from frontend.settings import SettingsInvalid, load_settings
from frontend.store import StoreError
from frontend.ui import sidebar
from frontend.ui.live import stream_into
from frontend.ui.messages import image_caption, render_assistant, render_user
from frontend.ui.state import (
    conversation_store,
    current_conversation,
    forget_streaming,
    load,
    open_conversation,
    pending_images,
    remember_streaming,
    save,
    stop_interrupted_answers,
)

COMPOSER = "composer"
IMAGE_TYPES = ["jpg", "jpeg", "png", "gif", "webp", "bmp"]

st.set_page_config(page_title="Qwen3-VL chat", page_icon="🖼️", layout="wide")

try:
    settings = load_settings()
    store = conversation_store(settings.database_path)
except (SettingsInvalid, StoreError) as error:
    st.error(f"Configuration error: {error}")
    st.stop()


def new_conversation() -> Conversation:
    defaults = GenerationSettings(
        max_tokens=settings.max_tokens, image_token_budget=settings.image_token_budget
    )
    return Conversation(settings=defaults)


stop_interrupted_answers(store)
conversation = current_conversation(store, new_conversation)


def open_saved(conversation_id: str) -> None:
    if (loaded := load(store, conversation_id)) is not None:
        open_conversation(loaded)


def delete_saved(conversation_id: str) -> None:
    store.delete(conversation_id)
    if conversation_id == conversation.id:
        open_conversation(new_conversation())


def clear_chat() -> None:
    conversation.messages.clear()
    conversation.title = "New chat"
    conversation.touch()
    store.save(conversation)


def request_regenerate() -> None:
    st.session_state["regenerate"] = True


with st.sidebar:
    statuses = sidebar.endpoint_statuses(settings, settings.model_dump_json())
    targets = sidebar.pick_targets(statuses, settings, conversation)
    sidebar.settings_panel(conversation, targets)
    sidebar.chat_actions(conversation, on_clear=clear_chat)
    sidebar.conversation_list(
        store,
        conversation,
        on_open=open_saved,
        on_new=lambda: open_conversation(new_conversation()),
        on_delete=delete_saved,
    )
    sidebar.watch_endpoints(statuses, settings)

# A submission is read before the input is drawn, so a message that cannot be sent puts its text back.
problems: list[str] = []
jobs = []
submission = st.session_state.get(COMPOSER)
if submission is not None:
    waiting = pending_images()
    for upload in submission.files:
        try:
            waiting.append(
                prepare_image(
                    upload.getvalue(),
                    upload.name,
                    token_budget=image_budget(conversation.settings.image_token_budget, targets),
                    max_bytes=settings.max_upload_mb * 1024 * 1024,
                )
            )
        except ImageRejected as error:
            problems.append(str(error))
    if not targets:
        problems.append("No model is ready to answer; the sidebar says why.")
    if not problems:
        try:
            now, later = images_for_next_message(
                waiting, targets, split=st.session_state.pop("split_images", False)
            )
            add_user_message(conversation, submission.text, now, targets)
            waiting[:] = later
            save(store, conversation)
            jobs = start_answers(conversation, targets, timeout_s=settings.request_timeout_s)
        except TooManyImages as error:
            problems.append(str(error))
            st.session_state["split_images"] = True
        except EmptyMessage as error:
            problems.append(str(error))
    if problems:
        st.session_state[COMPOSER] = submission.text
elif st.session_state.pop("regenerate", False) and targets and drop_last_answer(conversation):
    jobs = start_answers(conversation, targets, timeout_s=settings.request_timeout_s)

st.title(conversation.title if conversation.messages else "Qwen3-VL chat")
if not conversation.messages:
    st.caption("Ask anything, or attach images (JPG, PNG, GIF, WebP, BMP) with the clip, drag-drop or paste.")
slots = []
for index, message in enumerate(conversation.messages):
    if message.role == "user":
        render_user(message)
        continue
    live = bool(jobs) and index == len(conversation.messages) - 1
    slots = render_assistant(message, index=index, image=image_for_answer(conversation, index), live=live)

last = conversation.messages[-1] if conversation.messages else None
if not jobs and last is not None and last.role == "assistant":
    st.button("Regenerate", icon="🔄", key="regenerate-button", on_click=request_regenerate)

if waiting := pending_images():
    st.info(f"{len(waiting)} image(s) ready, sent with your next message:", icon="📎")
    st.caption(" · ".join(image_caption(image) for image in waiting))
    if st.button("Discard these images", key="discard-pending"):
        waiting.clear()
        st.rerun()
for problem in problems:
    st.error(problem, icon="🚫")

st.chat_input(
    "Ask about your images…",
    key=COMPOSER,
    accept_file="multiple",
    file_type=IMAGE_TYPES,
    max_upload_size=settings.max_upload_mb,
    submit_mode="disable",
    disabled=not targets,
)

if jobs:
    remember_streaming(conversation, jobs)
    stream_into(jobs, slots, save=lambda: save(store, conversation))
    forget_streaming()
    if any(job.answer.status in (AnswerStatus.FAILED, AnswerStatus.INTERRUPTED) for job in jobs):
        sidebar.endpoint_statuses.clear()  # look again now: the server may be down or serve another model
    st.rerun()
