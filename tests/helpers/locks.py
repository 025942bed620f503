"""Reading the hash-recording requirements files that scripts/lock.sh writes."""

from __future__ import annotations

import re
from pathlib import Path

_PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s\\;]+)")
_HASH = re.compile(r"--hash=sha256:[0-9a-f]{64}")


def normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_lock(path: Path) -> dict[str, tuple[str, int]]:
    """name -> (version, number of sha256 hashes) from a hash-recording requirements file."""
    entries: dict[str, tuple[str, int]] = {}
    current = None
    for line in path.read_text().splitlines():
        if match := _PIN.match(line):
            current = normalise(match["name"])
            entries[current] = (match["version"], 0)
        elif current and _HASH.search(line):
            version, hashes = entries[current]
            entries[current] = (version, hashes + len(_HASH.findall(line)))
        elif line.strip() and not line.startswith((" ", "#")):
            raise AssertionError(f"{path.name}: not a pinned requirement: {line!r}")
    return entries
