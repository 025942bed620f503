"""Session fixtures `tiny_server` and `second_tiny_server`: real vLLMs serving the tiny random Qwen3-VL,
started with `python -m serve up` (the second under another served name, for pages that use two endpoints).
Browser fixtures: `browser` (one headless Chromium per test module) and `page` (a fresh context per test).

Each is started once per test session on 127.0.0.1 and a free port, with an API key; stopped with SIGTERM at
the end (even when tests fail), and the teardown fails the run if `serve up` did not exit 0 or left processes
behind. The keys are written where users write them, never in the environment: the first server's in
secrets.env (with an HF_TOKEN), the second's in .env, both in `serve up`'s working folder; every test that
gets a 401 without the key therefore shows that `serve up` read the file.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from harness.serve_up import ServeUp, free_port
from harness.tiny_checkpoint import (
    IMAGE_LIMIT,
    MAX_MODEL_LEN,
    SERVED_NAME,
    ensure_tiny_checkpoint,
    harness_env,
    write_tiny_profile,
)
from tests.helpers.browser import browser_page
from tests.helpers.streamlit_app import launch_chromium

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

STARTUP_TIMEOUT_S = 300
SECOND_SERVED_NAME = "tiny-qwen3-vl-b"
# Offline runs never use it; tests check it reaches vLLM's environment.
HF_TOKEN = "hf_tiny_test_token"


@dataclass(frozen=True)
class TinyServer:
    base_url: str
    root_url: str
    api_key: str
    served_name: str
    max_model_len: int
    image_limit: int
    profile_path: Path
    vllm_log: Path
    serve_up: ServeUp
    key_file: str
    hf_token: str


@pytest.fixture(scope="session")
def tiny_checkpoint() -> Path:
    return ensure_tiny_checkpoint()


@contextmanager
def _running_tiny_server(
    run_dir: Path, checkpoint: Path, served_name: str, key_file: str
) -> Iterator[TinyServer]:
    """`serve up` of the tiny checkpoint under `served_name`, its key in `key_file`, stopped with SIGTERM.

    The exit fails the test session if `serve up` did not exit 0 or left processes behind; whatever happens,
    nothing it started survives.
    """
    port = free_port()
    profile = write_tiny_profile(
        run_dir / "tiny.yaml", checkpoint=checkpoint, served_name=served_name, port=port
    )
    api_key = secrets.token_urlsafe(16)
    (run_dir / key_file).write_text(f"VLLM_API_KEY={api_key}\nHF_TOKEN={HF_TOKEN}\n")
    (run_dir / key_file).chmod(0o600)
    vllm_log = run_dir / "vllm.log"
    server = ServeUp(
        args=[str(profile), "--log-file", str(vllm_log)],
        # Empty counts as unset: a key in the developer's shell must not shadow the file.
        env={**harness_env(cache_dir=run_dir), "VLLM_API_KEY": "", "HF_TOKEN": ""},
        workdir=run_dir,
    ).start()
    root_url = f"http://127.0.0.1:{port}"
    try:
        server.wait_ready(STARTUP_TIMEOUT_S)
        yield TinyServer(
            base_url=f"{root_url}/v1",
            root_url=root_url,
            api_key=api_key,
            served_name=served_name,
            max_model_len=MAX_MODEL_LEN,
            image_limit=IMAGE_LIMIT,
            profile_path=profile,
            vllm_log=vllm_log,
            serve_up=server,
            key_file=key_file,
            hf_token=HF_TOKEN,
        )
        code = server.stop()
        leftovers = server.leftovers()
        assert code == 0, f"serve up exited with {code} on SIGTERM:\n{server.output()[-3000:]}"
        assert not leftovers, f"serve up left processes behind: {leftovers}"
    finally:
        server.kill_everything()


@pytest.fixture(scope="session")
def tiny_server(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> Iterator[TinyServer]:
    run_dir = tmp_path_factory.mktemp("tiny-server")
    with _running_tiny_server(run_dir, tiny_checkpoint, SERVED_NAME, "secrets.env") as server:
        yield server


@pytest.fixture(scope="session")
def second_tiny_server(
    tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path
) -> Iterator[TinyServer]:
    """Another tiny server, same checkpoint, served as SECOND_SERVED_NAME (a second endpoint for the page)."""
    run_dir = tmp_path_factory.mktemp("second-tiny-server")
    with _running_tiny_server(run_dir, tiny_checkpoint, SECOND_SERVED_NAME, ".env") as server:
        yield server


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = launch_chromium(playwright)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh browser context (a new Streamlit session); screenshot and page logs when the test fails."""
    with browser_page(browser, request) as page:
        yield page
