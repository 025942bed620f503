"""Per-browser-session state: the open conversation, images waiting to be sent, the shared store."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from frontend.answer_stream import AnswerJob
from frontend.chat_turns import finish
from frontend.conversation import Conversation, ImageAttachment
from frontend.store import ConversationStore

CHAT_PARAM = "chat"  # ?chat=<id> in the URL, so a reload reopens the same conversation


@st.cache_resource
def conversation_store(path: Path) -> ConversationStore:
    return ConversationStore(path)


def current_conversation(store: ConversationStore, new: Callable[[], Conversation]) -> Conversation:
    """The open conversation: this session's, else the one named in the URL, else a new one."""
    conversation: Conversation | None = st.session_state.get("conversation")
    wanted = st.query_params.get(CHAT_PARAM)
    if conversation is not None and (wanted is None or wanted == conversation.id):
        return conversation
    loaded = load(store, wanted) if wanted else None
    return open_conversation(loaded or new())


def load(store: ConversationStore, conversation_id: str) -> Conversation | None:
    """A stored conversation; answers that were streaming when the page went away become interrupted."""
    loaded = store.load(conversation_id)
    if loaded is not None and loaded.recover():
        store.save(loaded)
    return loaded


def open_conversation(conversation: Conversation) -> Conversation:
    st.session_state["conversation"] = conversation
    if conversation.messages:
        st.query_params[CHAT_PARAM] = conversation.id
    else:
        st.query_params.pop(CHAT_PARAM, None)
    return conversation


def save(store: ConversationStore, conversation: Conversation) -> None:
    store.save(conversation)
    st.query_params[CHAT_PARAM] = conversation.id


def pending_images() -> list[ImageAttachment]:
    """Images of a message that could not be sent yet; they go with the next one."""
    return st.session_state.setdefault("pending_images", [])


def remember_streaming(conversation: Conversation, jobs: list[AnswerJob]) -> None:
    st.session_state["streaming"] = (conversation, jobs)


def forget_streaming() -> None:
    st.session_state.pop("streaming", None)


def stop_interrupted_answers(store: ConversationStore) -> None:
    """Answers still streaming when a new run starts lost their page run: the Stop button, or any other
    click, interrupted it. Stop them now, before drawing, so the page shows them as stopped at once."""
    conversation, jobs = st.session_state.pop("streaming", (None, []))
    if conversation is not None:
        finish(jobs)
        store.save(conversation)
