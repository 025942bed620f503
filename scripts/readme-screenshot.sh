#!/usr/bin/env bash
# Regenerate docs/chat-page.png, the README's picture of the chat page: Chromium against the page with
# scripted stand-in servers for 8B and 4B (tests/test_frontend_screenshot.py). Needs the test venv
# (scripts/test.sh creates it) and Debian's chromium.
set -euo pipefail
cd "$(dirname "$0")/.."
UPDATE_README_PICTURE=1 exec "${VENV:-.venv}/bin/python" -m pytest -q tests/test_frontend_screenshot.py "$@"
