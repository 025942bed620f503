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
from streamlit.runtime.uploaded_file_manager import UploadedFile

from frontend.chat_import import ImportRejected, import_chat
from frontend.chat_request import TooManyImages
from frontend.chat_turns import (
    EmptyMessage,
    add_user_message,
    delete_turn,
    drop_last_answer,
    edit_last_user_message,
    image_budget,
    image_for_answer,
    images_for_next_message,
    prepare_answers,
    unanswered,
    video_budget,
)
from frontend.conversation import Conversation, GenerationSettings, Message, VideoAttachment
from frontend.documents import DocumentRejected
from frontend.images import ImageRejected, prepare_image
from frontend.live_answers import LiveTurn, one_after_another
from frontend.markdown import plain_text
from frontend.settings import SettingsInvalid, load_settings
from frontend.store import ConversationGone, StoreError
from frontend.ui import documents, login, sidebar
from frontend.ui.live import follow
from frontend.ui.messages import edit_form, image_caption, render_assistant, render_user, turn_actions
from frontend.ui.state import (
    OpenChat,
    conversation_store,
    current_chat,
    live_answers,
    open_conversation,
    pending_images,
    pending_videos,
    turn_saver,
)
from frontend.videos import VIDEO_SUFFIXES, VideoError, prepare_video

COMPOSER = "composer"
IMAGE_TYPES = ["jpg", "jpeg", "png", "gif", "webp", "bmp"]
VIDEO_TYPES = [suffix.removeprefix(".") for suffix in VIDEO_SUFFIXES]

st.set_page_config(page_title="Qwen3-VL chat", page_icon="🖼️", layout="wide")

try:
    settings = load_settings()
    store = conversation_store(settings.database_path)
except (SettingsInvalid, StoreError) as error:
    st.error(f"Configuration error: {error}")
    st.stop()

owner = login.require_login(settings)  # draws the login form and stops the run until someone is logged in
answers = live_answers()


def new_conversation() -> Conversation:
    defaults = GenerationSettings(
        max_tokens=settings.max_tokens, image_token_budget=settings.image_token_budget
    )
    return Conversation(settings=defaults)


chat, deleted_elsewhere = current_chat(store, owner, new_conversation)
if deleted_elsewhere:
    st.session_state["notice"] = deleted_elsewhere  # kept until drawn, across the rerun of a send
conversation = chat.conversation
live = streaming_before = answers.get(conversation.id)


def open_saved(conversation_id: str) -> None:
    if (loaded := store.load(conversation_id, owner=owner)) is not None:
        open_conversation(OpenChat(loaded, owner, store.version(conversation_id)))


def delete_saved(conversation_id: str) -> None:
    if (streaming := answers.get(conversation_id)) is not None:
        streaming.stop()
    store.delete(conversation_id, owner=owner)
    if conversation_id == conversation.id:
        open_conversation(OpenChat(new_conversation(), owner))


def save_change(**changes: list) -> None:
    """Store a change of the open chat; one deleted in another tab is said so, and not brought back."""
    try:
        chat.change(store, **changes)
    except ConversationGone as error:
        st.session_state["gone"] = str(error)


def clear_chat() -> None:
    removed = [message.id for message in conversation.messages]
    conversation.messages.clear()
    conversation.title = "New chat"
    conversation.touch()
    save_change(delete=removed)


def delete_message(message_id: str) -> None:
    if removed := delete_turn(conversation, message_id):
        save_change(delete=removed)


def start_editing(message_id: str) -> None:
    st.session_state["editing"] = message_id


def send_edit(text: str, keep_images: list[int]) -> None:
    st.session_state.update(requested="edit", edited=(text, keep_images))


def cancel_edit() -> None:
    st.session_state.pop("editing", None)


def request(action: str) -> None:
    st.session_state["requested"] = action


def import_uploaded(key: str) -> None:
    upload = st.session_state.get(key)
    if upload is None:
        return
    try:
        imported = import_chat(upload.getvalue(), max_bytes=settings.max_upload_mb * 1024 * 1024)
    except ImportRejected as error:
        st.session_state["import_problem"] = str(error)
        return
    store.save(imported, owner=owner)
    open_conversation(OpenChat(imported, owner, store.version(imported.id)))
    sidebar.reset_import()


with st.sidebar:
    login.account(owner)
    statuses = sidebar.endpoint_statuses(settings, settings.model_dump_json())
    targets = sidebar.pick_targets(statuses, settings, conversation)
    sidebar.settings_panel(conversation, targets)
    sidebar.chat_actions(conversation, on_clear=clear_chat, disabled=live is not None)
    sidebar.conversation_list(
        store,
        owner,
        conversation,
        on_open=open_saved,
        on_new=lambda: open_conversation(OpenChat(new_conversation(), owner)),
        on_delete=delete_saved,
    )
    sidebar.chat_import(on_upload=import_uploaded, problem=st.session_state.pop("import_problem", None))
    sidebar.watch_endpoints(statuses, settings)


def take_video(upload: UploadedFile, videos: list[VideoAttachment], problems: list[str]) -> None:
    """A video upload, checked and cut to the budget, joins `videos`; or its problem joins `problems`."""
    try:
        videos.append(
            prepare_video(
                upload.getvalue(), upload.name, max_mb=settings.max_video_mb, **video_budget(targets)
            )
        )
    except VideoError as error:
        problems.append(str(error))


def start_answering(**changes: list) -> LiveTurn | None:
    """Store the new turn with `changes`, then stream its answers (the live turn saves them as they come)."""
    turn, jobs = prepare_answers(conversation, targets, timeout_s=settings.request_timeout_s)
    appended = [*changes.pop("append", []), turn]
    save_change(**changes, append=appended)
    if st.session_state.get("gone"):
        return None
    saver = turn_saver(store, conversation.id)
    return answers.start(conversation.id, turn, jobs, saver, sequential=one_after_another(targets))


# A submission is read before the input is drawn, so a message that cannot be sent puts its text back.
problems: list[str] = []
submission = st.session_state.get(COMPOSER)
requested = st.session_state.pop("requested", None)
editing = st.session_state.get("editing")
if submission is not None and live is None:
    waiting = pending_images()
    videos = pending_videos()
    pdfs, pictures = documents.split_uploads(submission.files)
    for upload in pictures:
        if upload.name.lower().endswith(VIDEO_SUFFIXES):
            take_video(upload, videos, problems)
            continue
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
    problems += documents.attach(pdfs, max_bytes=settings.max_upload_mb * 1024 * 1024)
    if not targets:
        problems.append("No model is ready to answer; the sidebar says why.")
    if not problems:
        try:
            now, later = images_for_next_message(
                waiting, targets, split=st.session_state.pop("split_images", False)
            )
            budget = image_budget(conversation.settings.image_token_budget, targets)
            pages = documents.pages_for_message(now, targets, token_budget=budget)
            user = add_user_message(
                conversation,
                submission.text,
                now + (pages.images if pages else []),
                targets,
                videos=list(videos),
            )
            if pages:
                user.notices.append(documents.notice(pages, now, targets))
            waiting[:] = later
            sent_videos, videos[:] = list(videos), []
            live = start_answering(append=[user])
            if live is None:  # not sent after all: its images and videos wait for the next message again
                waiting[:0] = now
                videos[:0] = sent_videos
            elif pages:
                documents.sent(pages)
        except TooManyImages as error:
            problems.append(str(error))
            st.session_state["split_images"] = True
        except (EmptyMessage, DocumentRejected) as error:
            problems.append(str(error))
    if problems or st.session_state.get("gone"):
        st.session_state[COMPOSER] = submission.text
elif requested == "regenerate" and targets and live is None and (dropped := drop_last_answer(conversation)):
    live = start_answering(delete=[dropped.id])
elif requested == "answer" and targets and live is None and unanswered(conversation):
    live = start_answering()
elif requested == "edit" and targets and live is None and editing is not None:
    text, keep = st.session_state.pop("edited")
    try:
        edited, removed = edit_last_user_message(conversation, text, keep)
        cancel_edit()
        editing = None
        live = start_answering(update=[edited], delete=removed)
    except EmptyMessage as error:
        problems.append(str(error))
if gone := st.session_state.pop("gone", None):  # this chat was deleted elsewhere: a new one takes its place
    problems.append(f"{gone} What you sent is back in the input: send it to start a new chat.")
    chat = open_conversation(OpenChat(new_conversation(), owner))
    conversation, live = chat.conversation, None
elif live is not None and live is not streaming_before:
    st.rerun()  # an answer started: the next run draws the page as it now is (sidebar included) and follows it

st.title(plain_text(conversation.title) if conversation.messages else "Qwen3-VL chat", anchor=False)
if not conversation.messages:
    st.caption(
        "Ask anything, or attach images (JPG, PNG, GIF, WebP, BMP), a video (MP4, WebM, MOV) or a PDF with "
        "the clip, drag-drop or paste."
    )
slots = []
last_user = max(
    (i for i, message in enumerate(conversation.messages) if message.role == "user"), default=None
)
for index, stored in enumerate(conversation.messages):
    message: Message = live.message if live is not None and stored.id == live.message.id else stored
    streaming = live is not None and message is live.message

    def actions(message: Message = message, index: int = index) -> None:
        turn_actions(
            message,
            editable=index == last_user and bool(targets),
            disabled=live is not None,
            on_delete=delete_message,
            on_edit=start_editing,
        )

    if message.role == "user" and editing == message.id and index == last_user and live is None:
        edit_form(message, on_send=send_edit, on_cancel=cancel_edit)
    elif message.role == "user":
        render_user(message, actions)
    else:
        image = image_for_answer(conversation, index)
        answer_slots = render_assistant(message, index=index, image=image, live=streaming, actions=actions)
        slots = answer_slots if streaming else slots

last = conversation.messages[-1] if conversation.messages else None
if live is None and last is not None and last.role == "assistant":
    st.button("Regenerate", icon="🔄", key="regenerate-button", on_click=request, args=("regenerate",))
elif live is None and unanswered(conversation) and editing is None:
    st.button(
        "Answer", icon="💬", key="answer-button", on_click=request, args=("answer",), disabled=not targets
    )

if waiting_videos := pending_videos():
    st.info(f"{len(waiting_videos)} video(s) ready, sent with your next message:", icon="🎬")
    st.caption(" · ".join(plain_text(video.caption()) for video in waiting_videos))
    if st.button("Discard these videos", key="discard-pending-videos"):
        waiting_videos.clear()
        st.rerun()
if waiting := pending_images():
    st.info(f"{len(waiting)} image(s) ready, sent with your next message:", icon="📎")
    st.caption(" · ".join(image_caption(image) for image in waiting))
    if st.button("Discard these images", key="discard-pending"):
        waiting.clear()
        st.rerun()
documents.attached_box()
if notice := st.session_state.get("notice"):  # not a problem: what the user sends starts a new chat
    st.warning(notice, icon="🗑️")
    if live is None:  # shown until the answer being sent (if any) has ended
        st.session_state.pop("notice")
for problem in problems:
    st.error(problem, icon="🚫")

st.chat_input(
    "An answer is streaming: wait for it, or stop it" if live is not None else "Ask about your images…",
    key=COMPOSER,
    accept_file="multiple",
    file_type=[*IMAGE_TYPES, *VIDEO_TYPES, *documents.DOCUMENT_TYPES],
    # One cap for the widget: the larger; each file type's own cap is checked when it is prepared.
    max_upload_size=max(settings.max_upload_mb, settings.max_video_mb),
    submit_mode="disable",
    disabled=not targets or live is not None,
)

if live is not None:
    follow(live, slots)
    sidebar.after_answer(live, targets)
    st.rerun()
