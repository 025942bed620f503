"""The chat history database: round trips, listing, deleting, restarts, concurrent sessions, broken files."""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from frontend.conversation import (
    Answer,
    AnswerStats,
    AnswerStatus,
    Conversation,
    GenerationSettings,
    ImageAttachment,
    Message,
)
from frontend.store import SCHEMA_VERSION, ConversationStore, ConversationSummary, StoreError


def image(name: str) -> ImageAttachment:
    return ImageAttachment(
        name=name,
        mime_type="image/png",
        data_base64=base64.b64encode(bytes(range(256)) * 16).decode(),
        width=640,
        height=480,
        original_width=4032,
        original_height=3024,
        tokens=300,
        notes=["resized to the image token budget"],
    )


def full_conversation(title: str = "Cat photo — 猫", updated_at: float = 1_800_000_000.5) -> Conversation:
    """Everything the page stores: settings, images, compare-mode answers with stats, reasoning, notices."""
    return Conversation(
        title=title,
        created_at=1_799_999_000.25,
        updated_at=updated_at,
        endpoint="Qwen3-VL-8B",
        settings=GenerationSettings(
            system_prompt="Answer briefly.", temperature=0.2, top_p=0.9, max_tokens=512
        ),
        messages=[
            Message(
                role="user", text="What is in these images?", images=[image("cat.png"), image("dog.png")]
            ),
            Message(
                role="assistant",
                answers=[
                    Answer(
                        endpoint="Qwen3-VL-8B",
                        content="A cat and a dog. $x^2$",
                        reasoning="Two animals are visible.",
                        status=AnswerStatus.DONE,
                        stats=AnswerStats(
                            model="qwen3-vl-8b",
                            time_to_first_token_s=0.41,
                            total_time_s=3.75,
                            tokens_per_second=38.2,
                            prompt_tokens=812,
                            completion_tokens=120,
                        ),
                    ),
                    Answer(
                        endpoint="Qwen3-VL-4B",
                        content="Two pets",
                        status=AnswerStatus.STOPPED,
                        error=None,
                        stats=AnswerStats(model="qwen3-vl-4b", time_to_first_token_s=0.2),
                    ),
                ],
                notices=["1 image was left out: the server takes 1 per request."],
            ),
        ],
    )


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "data" / "chats.sqlite3"


def test_full_conversation_round_trips(db_path: Path) -> None:
    conversation = full_conversation()
    store = ConversationStore(db_path)
    store.save(conversation)
    loaded = store.load(conversation.id)
    assert loaded == conversation
    assert loaded is not conversation
    assert store.load("no-such-id") is None


def test_a_new_store_on_the_same_file_sees_everything(db_path: Path) -> None:
    """A frontend restart: a new ConversationStore on the existing file."""
    first, second = full_conversation("First"), full_conversation("Second", updated_at=1_800_000_100.0)
    store = ConversationStore(db_path)
    store.save(first)
    store.save(second)

    reopened = ConversationStore(db_path)
    assert reopened.load(first.id) == first
    assert reopened.load(second.id) == second
    assert [summary.id for summary in reopened.list()] == [second.id, first.id]


def test_list_is_newest_first_with_summaries_from_the_columns(db_path: Path) -> None:
    store = ConversationStore(db_path)
    old = Conversation(title="Old", updated_at=100.0)
    new = full_conversation("New", updated_at=300.0)
    middle = Conversation(title="Middle", updated_at=200.0, messages=[Message(role="user", text="hi")])
    for conversation in (old, new, middle):
        store.save(conversation)

    assert store.list() == [
        ConversationSummary(id=new.id, title="New", updated_at=300.0, message_count=2),
        ConversationSummary(id=middle.id, title="Middle", updated_at=200.0, message_count=1),
        ConversationSummary(id=old.id, title="Old", updated_at=100.0, message_count=0),
    ]
    assert [summary.id for summary in store.list(limit=2)] == [new.id, middle.id]
    with pytest.raises(ValueError, match="limit"):
        store.list(limit=0)


def test_saving_again_replaces_the_conversation(db_path: Path) -> None:
    store = ConversationStore(db_path)
    conversation = Conversation(title="Draft", updated_at=100.0)
    store.save(conversation)
    conversation.title = "Final"
    conversation.messages.append(Message(role="user", text="hello"))
    conversation.updated_at = 150.0
    store.save(conversation)

    assert store.list() == [
        ConversationSummary(id=conversation.id, title="Final", updated_at=150.0, message_count=1)
    ]
    assert store.load(conversation.id) == conversation


def test_delete_and_save_after_delete(db_path: Path) -> None:
    store = ConversationStore(db_path)
    kept, gone = Conversation(title="Kept"), full_conversation("Gone")
    store.save(kept)
    store.save(gone)

    assert store.delete(gone.id) is True
    assert store.delete(gone.id) is False
    assert store.load(gone.id) is None
    assert [summary.id for summary in store.list()] == [kept.id]

    store.save(gone)
    assert store.load(gone.id) == gone
    assert {summary.id for summary in store.list()} == {kept.id, gone.id}


def test_concurrent_saves_from_eight_threads_all_land(db_path: Path) -> None:
    """Eight browser sessions saving at once, each its own conversation, several times."""
    store = ConversationStore(db_path)
    start = threading.Barrier(8)

    def session(number: int) -> Conversation:
        conversation = full_conversation(f"Session {number}", updated_at=float(number))
        start.wait()
        for turn in range(5):
            conversation.messages.append(Message(role="user", text=f"turn {turn} of session {number}"))
            store.save(conversation)
            assert store.load(conversation.id) == conversation
        return conversation

    with ThreadPoolExecutor(max_workers=8) as pool:
        saved = list(pool.map(session, range(8)))

    reopened = ConversationStore(db_path)
    for conversation in saved:
        assert reopened.load(conversation.id) == conversation
    assert [summary.title for summary in reopened.list()] == [
        f"Session {number}" for number in reversed(range(8))
    ]
    assert {summary.message_count for summary in reopened.list()} == {2 + 5}


def test_schema_version_and_wal_are_set_and_opening_twice_is_harmless(db_path: Path) -> None:
    ConversationStore(db_path)
    ConversationStore(db_path)
    with sqlite3.connect(db_path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_database_from_a_newer_version_is_refused(db_path: Path) -> None:
    ConversationStore(db_path)
    with sqlite3.connect(db_path) as connection:
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(StoreError, match="newer version") as raised:
        ConversationStore(db_path)
    assert str(db_path) in str(raised.value)


def test_a_parent_that_is_a_file_raises_store_error_naming_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    path = blocker / "chats.sqlite3"
    with pytest.raises(StoreError) as raised:
        ConversationStore(path)
    message = str(raised.value)
    assert str(path) in message
    assert f"{blocker} is a file, not a folder" in message
    assert "FRONTEND_DATA_DIR" in message


def test_a_file_that_is_not_sqlite_raises_store_error(tmp_path: Path) -> None:
    path = tmp_path / "chats.sqlite3"
    path.write_bytes(b"These are my notes, not a database.\n" * 200)
    with pytest.raises(StoreError, match="not an SQLite database") as raised:
        ConversationStore(path)
    assert str(path) in str(raised.value)
    assert path.read_bytes().startswith(b"These are my notes"), "the file must be left as it was"


def test_unreadable_rows_are_skipped_by_list_and_load_returns_none(
    db_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = ConversationStore(db_path)
    good = full_conversation("Good", updated_at=100.0)
    store.save(good)
    future = Conversation(title="From a future version", updated_at=300.0).model_dump(mode="json")
    future["messages"] = [{"role": "system", "text": "a role this version does not know"}]
    with sqlite3.connect(db_path) as connection:
        rows = [
            ("corrupt", "Corrupt", 400.0, 1, '{"id": "corrupt", "title": '),  # truncated JSON
            ("bad-columns", "Bad columns", "yesterday", 1, good.model_dump_json()),
            (future["id"], "From a future version", 300.0, 1, json.dumps(future)),
        ]
        connection.executemany("INSERT INTO conversations VALUES (?, ?, ?, ?, ?)", rows)

    with caplog.at_level(logging.WARNING, logger="frontend.store"):
        listed = store.list()
        assert store.load("corrupt") is None
        assert store.load(future["id"]) is None
    # Valid JSON that is no longer a Conversation is listed (so the user can delete it); broken rows are not.
    assert [summary.id for summary in listed] == [future["id"], good.id]
    assert store.load(good.id) == good
    assert "corrupt" in caplog.text
    assert future["id"] in caplog.text
    assert store.delete(future["id"]) is True
