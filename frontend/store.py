"""Conversations persisted in SQLite, so chats survive a page reload and a frontend restart. No Streamlit here.

Streamlit runs every browser session's script in its own thread, several at once, so each operation opens its
own connection (sqlite3 connections must not be shared across threads), waits up to BUSY_TIMEOUT_S for a
lock, and writes in a single transaction: a crash leaves the old or the new conversation, never half of one.
WAL journaling lets the sidebar read while another session writes.

A conversation is stored whole, as its JSON (images included), with title, updated_at and message count copied
into columns so that the sidebar list does not parse every body. A save rewrites the whole row, so the page
should save at turn boundaries (message sent, answer finished), not on every streamed token.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from frontend.conversation import Conversation

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1  # PRAGMA user_version; bump it and add a step to _migrate when the table changes
BUSY_TIMEOUT_S = 10.0
_FIX_HINT = "Point FRONTEND_DATA_DIR at a writable folder (in Docker: the frontend-data volume at /data)."

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    updated_at REAL NOT NULL,
    message_count INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_updated_at ON conversations (updated_at DESC);
"""


class ConversationSummary(BaseModel):
    """A sidebar entry: enough to list a conversation without loading it."""

    id: str = Field(description="Conversation id, for load() and delete().")
    title: str = Field(description="Conversation title.")
    updated_at: float = Field(description="Unix time of the last change.")
    message_count: int = Field(ge=0, description="Messages (user and assistant turns) in it.")


class StoreError(RuntimeError):
    """The database cannot be opened or written; the message names the file and what to do."""


class ConversationStore:
    """All conversations of the page in one SQLite file; safe to use from several threads at once."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            blocker = next((p for p in (self.path.parent, *self.path.parent.parents) if p.is_file()), None)
            reason = f"{blocker} is a file, not a folder" if blocker else (error.strerror or str(error))
            raise StoreError(
                f"Cannot create the folder of the chat database {self.path}: {reason}. {_FIX_HINT}"
            ) from error
        try:
            with closing(self._connect()) as connection:
                # Persistent in the file; cannot change inside a transaction, so it comes first.
                connection.execute("PRAGMA journal_mode=WAL")
                connection.execute("BEGIN IMMEDIATE")
                try:
                    self._migrate(connection)
                    connection.execute("COMMIT")
                except BaseException:
                    if connection.in_transaction:
                        connection.execute("ROLLBACK")
                    raise
        except sqlite3.Error as error:
            raise StoreError(self._describe(error, "open")) from error

    def save(self, conversation: Conversation) -> None:
        """Insert or replace the whole conversation (as it is: the caller touches updated_at)."""
        row = (
            conversation.id,
            conversation.title,
            conversation.updated_at,
            len(conversation.messages),
            conversation.model_dump_json(),
        )
        with self._transaction("save a conversation to") as connection:
            connection.execute(
                "INSERT INTO conversations (id, title, updated_at, message_count, body) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET title = excluded.title, updated_at = excluded.updated_at, "
                "message_count = excluded.message_count, body = excluded.body",
                row,
            )

    def load(self, conversation_id: str) -> Conversation | None:
        """The conversation, or None when there is none or its row no longer validates (logged)."""
        with self._connection("read a conversation from") as connection:
            row = connection.execute(
                "SELECT body FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
        if row is None:
            return None
        try:
            conversation = Conversation.model_validate_json(row[0])
        except (ValueError, TypeError) as error:  # ValidationError is a ValueError
            logger.warning(
                "Conversation %s in %s is unreadable, ignored: %s", conversation_id, self.path, error
            )
            return None
        if conversation.id != conversation_id:
            logger.warning(
                "Conversation %s in %s holds conversation %s, ignored",
                conversation_id,
                self.path,
                conversation.id,
            )
            return None
        return conversation

    def list(self, limit: int = 200) -> list[ConversationSummary]:
        """Summaries, most recently changed first; rows whose columns or JSON body are unreadable are skipped.

        Only the body's JSON syntax is checked here (by SQLite, without parsing it in Python): a body that is
        JSON but no longer a valid Conversation is listed, and load() returns None for it.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        with self._connection("list the conversations in") as connection:
            rows = connection.execute(
                "SELECT id, title, updated_at, message_count FROM conversations WHERE json_valid(body) "
                "ORDER BY updated_at DESC, id LIMIT ?",
                (limit,),
            ).fetchall()
        summaries = []
        for conversation_id, title, updated_at, message_count in rows:
            try:
                summaries.append(
                    ConversationSummary(
                        id=conversation_id, title=title, updated_at=updated_at, message_count=message_count
                    )
                )
            except ValidationError as error:
                logger.warning(
                    "Conversation %r in %s is unreadable, not listed: %s", conversation_id, self.path, error
                )
        return summaries

    def delete(self, conversation_id: str) -> bool:
        """Remove the conversation; False when there was none."""
        with self._transaction("delete a conversation from") as connection:
            cursor = connection.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,))
            return cursor.rowcount > 0

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; writes open theirs explicitly with BEGIN IMMEDIATE,
        # which takes the write lock up front (waiting up to the timeout) instead of failing half-way.
        return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)

    @contextmanager
    def _connection(self, action: str) -> Iterator[sqlite3.Connection]:
        try:
            with closing(self._connect()) as connection:
                yield connection
        except sqlite3.Error as error:
            raise StoreError(self._describe(error, action)) from error

    @contextmanager
    def _transaction(self, action: str) -> Iterator[sqlite3.Connection]:
        with self._connection(action) as connection:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                if connection.in_transaction:  # SQLite may have rolled back already (e.g. disk full)
                    connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")

    def _migrate(self, connection: sqlite3.Connection) -> None:
        """Bring the schema to SCHEMA_VERSION (inside the caller's transaction)."""
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"The chat database {self.path} has schema version {version}, written by a newer version of the "
                f"page (this one knows version {SCHEMA_VERSION}). Run the newer page, or point FRONTEND_DATA_DIR "
                "at another folder."
            )
        if version < 1:
            # One statement at a time: executescript() would commit the open transaction first.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)
        # Future versions: `if version < 2: ...` here.
        if version != SCHEMA_VERSION:
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _describe(self, error: sqlite3.Error, action: str) -> str:
        text = str(error)
        if "not a database" in text:
            return (
                f"{self.path} is not an SQLite database ({text}), so the chat history cannot be kept there. "
                "Move the file away, or point FRONTEND_DATA_DIR at another folder."
            )
        if "locked" in text or "busy" in text:
            return (
                f"Could not {action} the chat database {self.path}: it stayed locked for {BUSY_TIMEOUT_S:g} s "
                f"({text}). Another process may hold it; try again."
            )
        if "readonly" in text or "unable to open" in text:
            return f"Could not {action} the chat database {self.path}: {text}. " + _FIX_HINT
        return f"Could not {action} the chat database {self.path}: {text}."
