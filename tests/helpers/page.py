"""The chat page under Streamlit's AppTest, configured through FRONTEND_* variables like compose does."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from frontend.conversation import Conversation
from frontend.store import ConversationStore
from harness.serve_up import REPO_ROOT

APP = str(REPO_ROOT / "frontend" / "app.py")
File = tuple[str, bytes, str]  # name, bytes, MIME type: what a browser uploads


def start_page(
    monkeypatch: pytest.MonkeyPatch,
    data_dir: Path,
    endpoints: Sequence[dict[str, Any]],
    *,
    query: dict[str, str] | None = None,
    timeout_s: float = 120.0,
    user: dict[str, Any] | None = None,
    secrets: dict[str, Any] | None = None,
    **variables: str,
) -> AppTest:
    """Run the page once with `endpoints` and `variables` (FRONTEND_*); nothing else from the caller's
    environment leaks in. Answers are short (FRONTEND_MAX_TOKENS 12) unless `variables` say otherwise. The page
    is on loopback (FRONTEND_BIND_ADDRESS) unless `variables` say otherwise."""
    for name in [name for name in os.environ if name.startswith("FRONTEND_")]:
        monkeypatch.delenv(name)
    defaults = {
        "FRONTEND_ENDPOINTS": json.dumps(list(endpoints)),
        "FRONTEND_DATA_DIR": str(data_dir),
        "FRONTEND_BIND_ADDRESS": "127.0.0.1",  # as `streamlit run` with the page's config.toml (AppTest has none)
    }
    for name, value in {**defaults, "FRONTEND_MAX_TOKENS": "12", **variables}.items():
        monkeypatch.setenv(name, value)
    page = AppTest.from_file(APP, default_timeout=timeout_s)
    page.query_params.update(query or {})
    page.user.update(user or {})  # what st.user says: Streamlit's own seam for a logged-in OIDC user
    page.secrets.update(secrets or {})
    page.run()
    assert not page.exception, page.exception
    return page


def send(page: AppTest, text: str, *files: File) -> AppTest:
    """Type `text`, attach `files`, press enter."""
    widget = page.chat_input[0]
    for name, data, mime in files:
        widget.upload(name, data, mime)
    widget.set_value(text).run()
    assert not page.exception, page.exception
    return page


def stats_lines(message: Any) -> list[str]:
    """The stats line under each answer of a chat message."""
    return [caption.value for caption in message.caption if "first token" in caption.value]


def saved(data_dir: Path, page: AppTest) -> Conversation:
    """The conversation the page has open (named in its URL), as stored."""
    conversation = ConversationStore(data_dir / "chats.sqlite3").load(page.query_params["chat"])
    assert conversation is not None
    return conversation
