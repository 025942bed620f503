"""The Streamlit page as a user gets it: `streamlit run` in a child process, driven by a headless Chromium.

`StreamlitApp` starts `streamlit run <script>` on 127.0.0.1 and a free port with a given environment, waits for
GET /_stcore/health to answer "ok", stops it (SIGTERM, then SIGKILL) and restarts it on the same port, so a page
open in the browser can reconnect or reload as after a frontend restart. `launch_chromium` starts Debian's
Chromium through Playwright's sync API; `wait_for_app_idle` waits until the page is connected and no script run
is in progress.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.serve_up import REPO_ROOT, free_port

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page, Playwright

APP_SCRIPT = REPO_ROOT / "frontend" / "app.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
)
# Streamlit's root element carries the websocket and script-run state as attributes.
APP_CONNECTED = '[data-testid="stApp"][data-test-connection-state="CONNECTED"]'
SCRIPT_IDLE = '[data-test-script-state="notRunning"]'
# Settings of the page under test come only from `StreamlitApp.env`, never from the developer's shell.
INHERITED_PREFIXES_DROPPED = ("FRONTEND_", "STREAMLIT_")


@dataclass
class StreamlitApp:
    """One `streamlit run` child; its output goes to `workdir`/streamlit.log."""

    env: dict[str, str]
    workdir: Path
    script: Path = APP_SCRIPT
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "streamlit.log"

    def command(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(self.script),
            "--server.headless",
            "true",
            "--server.port",
            str(self.port),
            "--server.address",
            "127.0.0.1",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
        ]

    def start(self, timeout: float = 60) -> StreamlitApp:
        """Start the app and wait until it is healthy; raises with its log if it exits or times out."""
        assert self.process is None or self.process.poll() is not None, "already running"
        self.workdir.mkdir(parents=True, exist_ok=True)
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(INHERITED_PREFIXES_DROPPED)
        }
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**inherited, "NO_COLOR": "1", **self.env},  # a plain-text log
                cwd=REPO_ROOT,
                start_new_session=True,
            )
        self.wait_healthy(timeout)
        return self

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def wait_healthy(self, timeout: float) -> float:
        """Seconds until /_stcore/health answered "ok"."""
        assert self.process is not None
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"streamlit exited with {self.process.returncode}:\n{self.output()[-4000:]}"
                )
            if self._health_ok():
                return time.monotonic() - started
            time.sleep(0.2)
        raise TimeoutError(f"streamlit not healthy after {timeout} s:\n{self.output()[-4000:]}")

    def _health_ok(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                return response.status == 200 and response.read().strip() == b"ok"
        except OSError:
            return False

    def stop(self, timeout: float = 15) -> int | None:
        """SIGTERM the app (SIGKILL to its process group if it does not go); its exit code, None if not started."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)
        return self.process.returncode

    def restart(self, timeout: float = 60) -> StreamlitApp:
        """Stop and start again on the same port: the page in the browser sees a frontend restart."""
        self.stop()
        return self.start(timeout)

    def __enter__(self) -> StreamlitApp:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def launch_chromium(playwright: Playwright) -> Browser:
    """Debian's Chromium (Playwright cannot download browsers on these machines), headless."""
    if not CHROMIUM.exists():
        raise FileNotFoundError(f"{CHROMIUM} is missing: apt-get install chromium (scripts/test.sh does it)")
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=list(CHROMIUM_ARGS), headless=True)


def wait_for_app_idle(page: Page, timeout_ms: float = 60_000) -> None:
    """Wait until the page's websocket is connected and no script run is in progress."""
    from playwright.sync_api import expect

    expect(page.locator(APP_CONNECTED)).to_be_attached(timeout=timeout_ms)
    expect(page.locator(SCRIPT_IDLE)).to_be_attached(timeout=timeout_ms)
