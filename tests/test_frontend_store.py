"""The chat history database: round trips, listing, deleting, restarts, concurrent sessions, broken files."""

from __future__ import annotations

import base64
import json
import logging
import sqlite3
import threading
import time
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
from frontend.store import (
    SCHEMA_VERSION,
    ConversationGone,
    ConversationStore,
    ConversationSummary,
    StoreError,
)


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
    future = Conversation(title="From a future version", updated_at=300.0)
    store.save(future)
    bad_turn = Conversation(title="Bad turn", updated_at=200.0)
    store.save(bad_turn)
    with sqlite3.connect(db_path) as connection:
        rows = [
            ("corrupt", "", "Corrupt", 400.0, 1, '{"id": "corrupt", "title": '),  # truncated JSON
            ("bad-columns", "", "Bad columns", "yesterday", 1, good.model_dump_json(exclude={"messages"})),
        ]
        connection.executemany("INSERT INTO conversations VALUES (?, ?, ?, ?, ?, ?)", rows)
        connection.execute(
            "INSERT INTO messages VALUES (?, 'm1', 0, ?)",
            (future.id, json.dumps({"role": "system", "text": "a role this version does not know"})),
        )
        connection.execute("INSERT INTO messages VALUES (?, 'm2', 0, '{not json')", (bad_turn.id,))

    with caplog.at_level(logging.WARNING, logger="frontend.store"):
        listed = store.list()
        assert store.load("corrupt") is None
        assert store.load(future.id) is None
        assert store.load(bad_turn.id) is None
    # Valid JSON that is no longer a Conversation is listed (so the user can delete it); broken rows are not.
    assert [summary.id for summary in listed] == [future.id, bad_turn.id, good.id]
    assert store.load(good.id) == good
    assert "corrupt" in caplog.text
    assert future.id in caplog.text
    assert store.delete(future.id) is True


# ------------------------------------------------------------------------------ concurrent tabs on one chat


def chat_with_one_exchange() -> Conversation:
    return Conversation(
        title="Shared",
        messages=[
            Message(role="user", text="first question"),
            Message(
                role="assistant",
                answers=[Answer(endpoint="A", content="first answer", status=AnswerStatus.DONE)],
            ),
        ],
    )


def exchange(question: str) -> list[Message]:
    return [
        Message(role="user", text=question),
        Message(role="assistant", answers=[Answer(endpoint="A", content=f"answer to {question}")]),
    ]


def texts(conversation: Conversation) -> list[str]:
    return [message.text or message.answers[0].content for message in conversation.messages]


def test_two_tabs_sending_to_one_chat_keep_both_turns(db_path: Path) -> None:
    """Two page processes (two stores on one file), each with its own copy of the chat, send a turn each: the
    tab that saves last must not erase the other's turn (a whole-conversation upsert did)."""
    first_tab, second_tab = ConversationStore(db_path), ConversationStore(db_path)
    chat = chat_with_one_exchange()
    first_tab.save(chat)
    mine, theirs = first_tab.load(chat.id), second_tab.load(chat.id)

    new_in_first = exchange("from the first tab")
    mine.messages += new_in_first
    first_tab.change(mine, append=new_in_first)
    new_in_second = exchange("from the second tab")
    theirs.messages += new_in_second
    second_tab.change(theirs, append=new_in_second)

    stored = ConversationStore(db_path).load(chat.id)
    assert texts(stored) == [
        "first question",
        "first answer",
        "from the first tab",
        "answer to from the first tab",
        "from the second tab",
        "answer to from the second tab",
    ]


def test_an_answer_saved_while_it_streams_does_not_bring_back_a_deleted_chat(db_path: Path) -> None:
    streaming_tab, other_tab = ConversationStore(db_path), ConversationStore(db_path)
    chat = chat_with_one_exchange()
    turns = exchange("a long question")
    chat.messages += turns
    streaming_tab.save(chat)

    assert other_tab.delete(chat.id) is True
    turns[1].answers[0].content += " and more"
    assert streaming_tab.update_turn(chat.id, turns[1], updated_at=time.time()) is False
    with pytest.raises(ConversationGone, match="deleted, in another tab or window"):
        streaming_tab.change(chat, append=exchange("one more"))
    assert streaming_tab.load(chat.id) is None
    assert streaming_tab.list() == []
    assert streaming_tab.version(chat.id) is None


def test_a_turn_deleted_in_one_tab_stays_deleted_when_the_other_saves(db_path: Path) -> None:
    first_tab, second_tab = ConversationStore(db_path), ConversationStore(db_path)
    chat = chat_with_one_exchange()
    first_tab.save(chat)
    mine, theirs = first_tab.load(chat.id), second_tab.load(chat.id)

    answer = mine.messages.pop()
    first_tab.change(mine, delete=[answer.id])
    theirs.messages[1].answers[0].content = "edited elsewhere"  # the other tab still has it, and saves it
    second_tab.change(theirs, update=[theirs.messages[1]])
    assert texts(ConversationStore(db_path).load(chat.id)) == ["first question"]


def test_every_change_bumps_the_version(db_path: Path) -> None:
    store = ConversationStore(db_path)
    chat = chat_with_one_exchange()
    assert store.version(chat.id) is None
    store.save(chat)
    versions = [store.version(chat.id)]
    turns = exchange("next")
    store.change(chat, append=turns)
    versions.append(store.version(chat.id))
    store.update_turn(chat.id, turns[1], updated_at=time.time())
    versions.append(store.version(chat.id))
    assert versions == sorted(set(versions)), versions


def test_eight_threads_appending_to_one_chat_all_land_in_order(db_path: Path) -> None:
    store = ConversationStore(db_path)
    chat = Conversation(title="Busy")
    store.save(chat)
    start = threading.Barrier(8)

    def tab(number: int) -> None:
        own = store.load(chat.id)
        start.wait()
        for turn in range(5):
            turns = exchange(f"tab {number} turn {turn}")
            own.messages += turns
            store.change(own, append=turns)

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(tab, range(8)))
    stored = texts(store.load(chat.id))
    assert len(stored) == 8 * 5 * 2
    for number in range(8):
        questions = [text for text in stored if text.startswith(f"tab {number} ")]
        assert questions == [f"tab {number} turn {turn}" for turn in range(5)]
    for index in range(0, len(stored), 2):  # each question is followed by its own answer
        assert stored[index + 1] == f"answer to {stored[index]}"


def test_owners_see_only_their_own_chats(db_path: Path) -> None:
    store = ConversationStore(db_path)
    alice, bob, shared = (
        Conversation(title="Alice's"),
        Conversation(title="Bob's"),
        Conversation(title="Team"),
    )
    store.save(alice, owner="oidc:alice@example.com")
    store.save(bob, owner="oidc:bob@example.com")
    store.save(shared)

    assert [s.title for s in store.list(owner="oidc:alice@example.com")] == ["Alice's"]
    assert [s.title for s in store.list()] == ["Team"]
    assert store.load(bob.id, owner="oidc:alice@example.com") is None
    assert store.load(bob.id) is None
    assert store.delete(bob.id, owner="oidc:alice@example.com") is False
    with pytest.raises(StoreError, match="belongs to someone else"):
        store.save(bob, owner="oidc:alice@example.com")
    assert store.load(bob.id, owner="oidc:bob@example.com") == bob


def test_answers_left_streaming_by_a_dead_process_are_recovered(db_path: Path) -> None:
    store = ConversationStore(db_path)
    chat = chat_with_one_exchange()
    turns = exchange("cut short")  # its answer is still 'streaming'
    chat.messages += turns
    store.save(chat)
    assert store.recover_interrupted() == 1
    answer = store.load(chat.id).messages[-1].answers[0]
    assert answer.status is AnswerStatus.INTERRUPTED
    assert answer.content == "answer to cut short"
    assert store.recover_interrupted() == 0


def test_a_version_1_database_is_migrated_and_kept_as_a_backup(db_path: Path) -> None:
    """The page before per-turn rows stored each conversation whole in one row."""
    old = full_conversation("Old chat")
    db_path.parent.mkdir(parents=True)
    with sqlite3.connect(db_path) as connection:
        connection.executescript(
            "CREATE TABLE conversations (id TEXT PRIMARY KEY, title TEXT NOT NULL, updated_at REAL NOT NULL, "
            "message_count INTEGER NOT NULL, body TEXT NOT NULL); PRAGMA user_version = 1;"
        )
        body = json.loads(old.model_dump_json())
        for message in body["messages"]:
            del message["id"]  # version 1 turns had no id
        connection.executemany(
            "INSERT INTO conversations VALUES (?, ?, ?, ?, ?)",
            [(old.id, old.title, old.updated_at, 2, json.dumps(body)), ("broken", "Broken", 1.0, 1, "{")],
        )

    store = ConversationStore(db_path)
    migrated = store.load(old.id)
    assert migrated.model_dump(exclude={"messages": {"__all__": {"id"}}}) == old.model_dump(
        exclude={"messages": {"__all__": {"id"}}}
    )
    assert len({message.id for message in migrated.messages}) == 2
    assert [summary.title for summary in store.list()] == ["Old chat"]
    with sqlite3.connect(db_path) as connection:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert connection.execute("SELECT count(*) FROM conversations_v1").fetchone()[0] == 2
