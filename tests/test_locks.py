"""Both locks pin every package with its sha256 and are installed with hash checking, so a fresh machine gets
exactly the files CI tested; the test environment is what the lock says."""

from __future__ import annotations

import importlib.metadata
import re
import sysconfig
from pathlib import Path

import pytest

from tests.helpers.locks import normalise, read_lock

REPO = Path(__file__).resolve().parents[1]
TEST_LOCK = REPO / "requirements" / "test.lock"
FRONTEND_LOCK = REPO / "frontend" / "requirements.lock"


def top_level(path: Path) -> list[str]:
    names = []
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            names.append(normalise(re.split(r"[=<>!~\[ ]", line, maxsplit=1)[0]))
    return names


@pytest.mark.parametrize("lock", [TEST_LOCK, FRONTEND_LOCK], ids=["test", "frontend"])
def test_every_package_is_pinned_with_its_hashes(lock: Path) -> None:
    entries = read_lock(lock)
    assert len(entries) > 40
    unhashed = [name for name, (_, hashes) in entries.items() if hashes == 0]
    assert not unhashed, f"{lock.name}: no sha256 for {unhashed}"
    assert "scripts/lock.sh" in lock.read_text().splitlines()[1]  # how to regenerate it


def test_the_locks_cover_their_inputs_and_leave_the_cuda_builds_out() -> None:
    test_lock, frontend_lock = read_lock(TEST_LOCK), read_lock(FRONTEND_LOCK)
    assert set(top_level(REPO / "requirements" / "test.in")) <= test_lock.keys()
    assert not test_lock.keys() & {"torchvision", "torchaudio", "torchcodec"}
    assert test_lock["torch"][0] == "2.13.0+cpu"
    for line in (REPO / "frontend" / "requirements.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            assert frontend_lock[normalise(name)][0] == version.strip(), name


def test_both_locks_are_installed_with_hash_checking_and_generated_by_a_resolver() -> None:
    test_sh = (REPO / "scripts" / "test.sh").read_text()
    assert re.search(r"pip install [^\n]*--require-hashes[^\n]*\\\n\s*-r requirements/test.lock", test_sh)
    dockerfile = (REPO / "frontend" / "Dockerfile").read_text()
    assert "--no-deps --require-hashes -r /tmp/requirements.lock" in dockerfile
    lock_sh = (REPO / "scripts" / "lock.sh").read_text()
    assert lock_sh.count('"$uv" pip compile') == 2 and "--generate-hashes" in lock_sh


def test_the_environment_running_this_suite_is_exactly_the_test_lock() -> None:
    """What CI tests is what a fresh machine installs from the lock (editable project aside)."""
    # Only the environment's own site-packages: once anything imports setuptools, its vendored copies
    # (packaging 24.2, typing-extensions 4.12.2, ...) join sys.path with dist-info of their own.
    site_packages = [sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]]
    installed = {
        normalise(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions(path=site_packages)
    }
    mismatched = {
        name: (version, installed.get(name))
        for name, (version, _) in read_lock(TEST_LOCK).items()
        if installed.get(name) != version
    }
    assert not mismatched, f"installed versions differ from requirements/test.lock: {mismatched}"
