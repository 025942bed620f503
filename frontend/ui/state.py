"""Per-browser-session state: the open conversation, images waiting to be sent; the process's shared store and
streaming answers."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from frontend.conversation import Conversation, ImageAttachment, Message, VideoAttachment
from frontend.live_answers import LiveAnswers
from frontend.store import ConversationStore

CHAT_PARAM = "chat"  # ?chat=<id> in the URL, so a reload reopens the same conversation
STALE = -1  # a version no stored conversation has: the next run reloads it


@st.cache_resource
def conversation_store(path: Path) -> ConversationStore:
    """One store per database file and process; answers left streaming by an earlier process are marked
    interrupted when it opens (this process streams nothing yet)."""
    store = ConversationStore(path)
    store.recover_interrupted()
    return store


@st.cache_resource
def live_answers() -> LiveAnswers:
    """The answers streaming in this process, shared by every session (two tabs see one answer)."""
    return LiveAnswers()


@dataclass
class OpenChat:
    """The conversation a session shows, and which stored version of it that copy is (None: not stored)."""

    conversation: Conversation
    owner: str
    version: int | None = None

    def refresh(self, store: ConversationStore) -> str | None:
        """Catch up with changes made elsewhere (another tab, an answer saved as it streams). Returns a notice
        when the conversation was deleted meanwhile (the session then starts a new one)."""
        if self.version is None:
            return None
        stored = store.version(self.conversation.id)
        if stored == self.version:
            return None
        loaded = store.load(self.conversation.id, owner=self.owner) if stored is not None else None
        if loaded is None:
            title = self.conversation.title
            self.conversation, self.version = Conversation(settings=self.conversation.settings), None
            return f"The chat “{title}” was deleted, in another tab or window."
        self.conversation, self.version = loaded, stored
        return None

    def change(
        self,
        store: ConversationStore,
        *,
        append: Sequence[Message] = (),
        update: Sequence[Message] = (),
        delete: Sequence[str] = (),
    ) -> None:
        """Store what this session changed (only that: other tabs' turns stay). Raises ConversationGone."""
        if self.version is None:
            store.save(self.conversation, owner=self.owner)
        else:
            store.change(self.conversation, append=append, update=update, delete=delete)
        self.version = STALE
        st.query_params[CHAT_PARAM] = self.conversation.id


def current_chat(
    store: ConversationStore, owner: str, new: Callable[[], Conversation]
) -> tuple[OpenChat, str | None]:
    """The open conversation: this session's (brought up to date), else the one named in the URL, else a new
    one; and a notice when it was deleted elsewhere."""
    chat: OpenChat | None = st.session_state.get("chat")
    wanted = st.query_params.get(CHAT_PARAM)
    if chat is not None and chat.owner == owner and (wanted is None or wanted == chat.conversation.id):
        notice = chat.refresh(store)
        if notice:
            st.query_params.pop(CHAT_PARAM, None)
        return chat, notice
    loaded = store.load(wanted, owner=owner) if wanted else None
    if loaded is not None:
        return open_conversation(OpenChat(loaded, owner, store.version(loaded.id))), None
    return open_conversation(OpenChat(new(), owner)), None


def open_conversation(chat: OpenChat) -> OpenChat:
    st.session_state["chat"] = chat
    if chat.version is not None:
        st.query_params[CHAT_PARAM] = chat.conversation.id
    else:
        st.query_params.pop(CHAT_PARAM, None)
    return chat


def turn_saver(store: ConversationStore, conversation_id: str) -> Callable[[Message], bool]:
    """How a streaming turn is saved (from its own thread, not the page's)."""
    return lambda message: store.update_turn(conversation_id, message, updated_at=time.time())


def pending_videos() -> list[VideoAttachment]:
    """Videos of a message that could not be sent yet; they go with the next one."""
    return st.session_state.setdefault("pending_videos", [])


def pending_images() -> list[ImageAttachment]:
    """Images of a message that could not be sent yet; they go with the next one."""
    return st.session_state.setdefault("pending_images", [])
