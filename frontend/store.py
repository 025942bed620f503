"""Conversations persisted in SQLite, so chats survive a page reload and a frontend restart. No Streamlit here.

Streamlit runs every browser session's script in its own thread, several at once, so each operation opens its
own connection (sqlite3 connections must not be shared across threads), waits up to BUSY_TIMEOUT_S for a
lock, and writes in a single transaction: a crash leaves the old or the new state, never half of one. WAL
journaling lets the sidebar read while another session writes.

Several tabs (or people) may write one conversation at once, so a turn is a row of its own, keyed by the
message id: a change appends, updates or deletes the turns it names and nothing else. A turn sent in one tab
therefore never erases a turn sent in another, an update never brings back a turn (or a chat) deleted
elsewhere, and appending to a deleted chat raises ConversationGone instead of recreating it. Every change
bumps the conversation's `version`, so a page can tell cheaply that another tab changed it.

Each conversation has an `owner` ("" = the shared space of a page without per-user login): list, load,
delete and replace only see the owner's conversations.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import closing, contextmanager
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

from frontend.conversation import Conversation, Message

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 2  # PRAGMA user_version; bump it and add a step to _migrate when the tables change
BUSY_TIMEOUT_S = 10.0
SHARED = ""  # the owner of every conversation when users are not known
_FIX_HINT = "Point FRONTEND_DATA_DIR at a writable folder (in Docker: the frontend-data volume at /data)."

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    updated_at REAL NOT NULL,
    version INTEGER NOT NULL,
    head TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_owner ON conversations (owner, updated_at DESC);
CREATE TABLE IF NOT EXISTS messages (
    conversation_id TEXT NOT NULL,
    id TEXT NOT NULL,
    position INTEGER NOT NULL,
    body TEXT NOT NULL,
    PRIMARY KEY (conversation_id, id)
);
CREATE INDEX IF NOT EXISTS messages_in_order ON messages (conversation_id, position);
"""
# A conversation's row holds everything but its turns (`head`, JSON); title and updated_at are copied into
# columns so that the sidebar list does not parse every head.
_HEAD_EXCLUDE = {"messages"}
_STREAMING_TURNS = (
    "SELECT conversation_id, id, body FROM messages WHERE EXISTS (SELECT 1 FROM json_each(body, '$.answers') "
    "WHERE json_extract(value, '$.status') = 'streaming')"
)


class ConversationSummary(BaseModel):
    """A sidebar entry: enough to list a conversation without loading it."""

    id: str = Field(description="Conversation id, for load() and delete().")
    title: str = Field(description="Conversation title.")
    updated_at: float = Field(description="Unix time of the last change.")
    message_count: int = Field(ge=0, description="Messages (user and assistant turns) in it.")


class StoreError(RuntimeError):
    """The database cannot be opened or written; the message names the file and what to do."""


class ConversationGone(StoreError):
    """The conversation was deleted (in another tab or window) while this one still had it open."""


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

    def save(self, conversation: Conversation, *, owner: str = SHARED) -> None:
        """Write the whole conversation as it is, replacing any stored turns (the caller touches updated_at).

        For a conversation nobody else writes: a new or imported chat, a test. The page changes an existing
        chat with change(), which cannot lose another tab's turns. Refuses another owner's conversation.
        """
        with self._transaction("save a conversation to") as connection:
            stored = connection.execute(
                "SELECT owner FROM conversations WHERE id = ?", (conversation.id,)
            ).fetchone()
            if stored is not None and stored[0] != owner:
                raise StoreError(f"Conversation {conversation.id} belongs to someone else; it was not saved.")
            connection.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation.id,))
            connection.execute(
                "INSERT INTO conversations (id, owner, title, updated_at, version, head) "
                "VALUES (?, ?, ?, ?, 1, ?) ON CONFLICT (id) DO UPDATE SET title = excluded.title, "
                "updated_at = excluded.updated_at, version = version + 1, head = excluded.head",
                (conversation.id, owner, *self._head(conversation)),
            )
            self._append(connection, conversation.id, conversation.messages)

    def change(
        self,
        conversation: Conversation,
        *,
        append: Sequence[Message] = (),
        update: Sequence[Message] = (),
        delete: Sequence[str] = (),
    ) -> None:
        """One turn's worth of changes, in one transaction: delete the turns with the ids in `delete`, replace
        the stored turns that `update` names (a turn deleted meanwhile stays deleted), append `append` after
        every stored turn, and store the conversation's title and settings. Raises ConversationGone when the
        conversation is no longer stored."""
        with self._transaction("save a conversation to") as connection:
            changed = connection.execute(
                "UPDATE conversations SET title = ?, updated_at = ?, version = version + 1, head = ? "
                "WHERE id = ?",
                (*self._head(conversation), conversation.id),
            )
            if changed.rowcount == 0:
                raise ConversationGone(
                    f"The chat “{conversation.title}” was deleted, in another tab or window."
                )
            connection.executemany(
                "DELETE FROM messages WHERE conversation_id = ? AND id = ?",
                [(conversation.id, message_id) for message_id in delete],
            )
            connection.executemany(
                "UPDATE messages SET body = ? WHERE conversation_id = ? AND id = ?",
                [(message.model_dump_json(), conversation.id, message.id) for message in update],
            )
            self._append(connection, conversation.id, append)

    def update_turn(self, conversation_id: str, message: Message, *, updated_at: float) -> bool:
        """Replace one stored turn (an answer as it streams); False, and nothing written, when the turn or
        its conversation was deleted meanwhile."""
        with self._transaction("save an answer to") as connection:
            changed = connection.execute(
                "UPDATE messages SET body = ? WHERE conversation_id = ? AND id = ?",
                (message.model_dump_json(), conversation_id, message.id),
            )
            if changed.rowcount == 0:
                return False
            connection.execute(
                "UPDATE conversations SET updated_at = max(updated_at, ?), version = version + 1 WHERE id = ?",
                (updated_at, conversation_id),
            )
            return True

    def version(self, conversation_id: str) -> int | None:
        """How many times the conversation changed (None when it is not stored): cheap, for change checks."""
        with self._connection("read a conversation from") as connection:
            row = connection.execute(
                "SELECT version FROM conversations WHERE id = ?", (conversation_id,)
            ).fetchone()
        return None if row is None else int(row[0])

    def load(self, conversation_id: str, *, owner: str = SHARED) -> Conversation | None:
        """The owner's conversation, or None when there is none or it no longer validates (logged)."""
        with self._connection("read a conversation from") as connection:
            head = connection.execute(
                "SELECT head FROM conversations WHERE id = ? AND owner = ?", (conversation_id, owner)
            ).fetchone()
            bodies = connection.execute(
                "SELECT body FROM messages WHERE conversation_id = ? ORDER BY position", (conversation_id,)
            ).fetchall()
        if head is None:
            return None
        try:
            fields = json.loads(head[0])
            fields["messages"] = [json.loads(body) for (body,) in bodies]
            conversation = Conversation.model_validate(fields)
        except (ValueError, TypeError) as error:  # JSONDecodeError and ValidationError are ValueErrors
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

    def list(self, limit: int = 200, *, owner: str = SHARED) -> list[ConversationSummary]:
        """The owner's summaries, most recently changed first; rows whose columns or JSON are unreadable are
        skipped.

        Only the JSON syntax of the row is checked here (by SQLite, without parsing it in Python): a row that
        is JSON but no longer a valid Conversation is listed, and load() returns None for it.
        """
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        with self._connection("list the conversations in") as connection:
            rows = connection.execute(
                "SELECT c.id, c.title, c.updated_at, (SELECT count(*) FROM messages m WHERE m.conversation_id = c.id) "
                "FROM conversations c WHERE c.owner = ? AND json_valid(c.head) ORDER BY c.updated_at DESC, c.id LIMIT ?",
                (owner, limit),
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

    def delete(self, conversation_id: str, *, owner: str = SHARED) -> bool:
        """Remove the owner's conversation and its turns; False when there was none."""
        with self._transaction("delete a conversation from") as connection:
            cursor = connection.execute(
                "DELETE FROM conversations WHERE id = ? AND owner = ?", (conversation_id, owner)
            )
            if cursor.rowcount == 0:
                return False
            connection.execute("DELETE FROM messages WHERE conversation_id = ?", (conversation_id,))
            return True

    def recover_interrupted(self) -> int:
        """Mark every answer still 'streaming' as interrupted: call it when the page's process starts, when
        no stream of an earlier process can be alive. Returns the number of turns changed."""
        with self._transaction("recover the answers in") as connection:
            turns = connection.execute(_STREAMING_TURNS).fetchall()
            recovered = []
            for conversation_id, message_id, body in turns:
                try:
                    message = Message.model_validate_json(body)
                except ValueError:
                    continue
                Conversation(messages=[message]).recover()
                recovered.append((message.model_dump_json(), conversation_id, message_id))
            connection.executemany(
                "UPDATE messages SET body = ? WHERE conversation_id = ? AND id = ?", recovered
            )
            return len(recovered)

    @staticmethod
    def _head(conversation: Conversation) -> tuple[str, float, str]:
        """(title, updated_at, head JSON) of the conversation's row."""
        head = conversation.model_dump_json(exclude=_HEAD_EXCLUDE)
        return conversation.title, conversation.updated_at, head

    @staticmethod
    def _append(connection: sqlite3.Connection, conversation_id: str, messages: Sequence[Message]) -> None:
        """Insert `messages` after the conversation's last turn (inside the caller's transaction)."""
        if not messages:
            return
        (last,) = connection.execute(
            "SELECT coalesce(max(position), -1) FROM messages WHERE conversation_id = ?", (conversation_id,)
        ).fetchone()
        connection.executemany(
            "INSERT INTO messages (conversation_id, id, position, body) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (conversation_id, id) DO UPDATE SET body = excluded.body",
            [
                (conversation_id, message.id, last + offset, message.model_dump_json())
                for offset, message in enumerate(messages, start=1)
            ],
        )

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
        if version == 1:  # whole conversations in one row: keep that table, as a backup, and split it
            connection.execute("ALTER TABLE conversations RENAME TO conversations_v1")
            connection.execute("DROP INDEX IF EXISTS conversations_by_updated_at")
        if version < SCHEMA_VERSION:
            # One statement at a time: executescript() would commit the open transaction first.
            for statement in _SCHEMA.split(";"):
                if statement.strip():
                    connection.execute(statement)
        if version == 1:
            self._split_v1_rows(connection)
        # Future versions: `if version < 3: ...` here.
        if version != SCHEMA_VERSION:
            connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def _split_v1_rows(self, connection: sqlite3.Connection) -> None:
        """Version 1 rows into heads and turns; turns get the ids they did not have. A row that is not a
        JSON conversation stays only in conversations_v1 (logged)."""
        for conversation_id, body in connection.execute("SELECT id, body FROM conversations_v1").fetchall():
            try:
                fields = json.loads(body)
                messages = [Message.model_validate(message) for message in fields.pop("messages", [])]
                conversation = Conversation.model_validate(fields)
            except (ValueError, TypeError, AttributeError) as error:
                logger.warning(
                    "Conversation %r in %s is unreadable, kept in conversations_v1 only: %s",
                    conversation_id,
                    self.path,
                    error,
                )
                continue
            connection.execute(
                "INSERT INTO conversations (id, owner, title, updated_at, version, head) VALUES (?, ?, ?, ?, 1, ?)",
                (conversation_id, SHARED, *self._head(conversation)),
            )
            self._append(connection, conversation_id, messages)

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
