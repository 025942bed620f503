"""A fake `nvidia-smi` on PATH, because there is no GPU on the test machines: a shell script with that name that
answers the two queries `serve` makes with output captured from real GPUs (tests/helpers/nvidia_smi/, whose
README says where each figure comes from), and fails loudly on anything else."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

CAPTURES = Path(__file__).resolve().parent / "nvidia_smi"
GPU_QUERY = "--query-gpu=index,name,memory.total,memory.used,memory.free"
APPS_QUERY = "--query-compute-apps=pid,process_name,used_memory"


def capture(name: str) -> str:
    return (CAPTURES / f"{name}.csv").read_text()


def install(bin_dir: Path, gpus: str, *, apps: str = "", exit_code: int = 0) -> Path:
    """Write `bin_dir/nvidia-smi` answering with `gpus` / `apps` (CSV text); a non-zero `exit_code` makes it
    fail as nvidia-smi does without a driver. Returns bin_dir (prepend it to PATH)."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    (bin_dir / "gpus.csv").write_text(gpus)
    (bin_dir / "apps.csv").write_text(apps)
    failure = (
        f'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver." ; exit {exit_code}'
        if exit_code
        else ""
    )
    here = shlex.quote(str(bin_dir))
    script = f"""#!/bin/sh
# FAKE nvidia-smi written by tests/helpers/fake_nvidia_smi.py: there is no GPU here.
{failure}
case "$*" in
    *{GPU_QUERY}*--format=csv,noheader,nounits*) cat {here}/gpus.csv ;;
    *{APPS_QUERY}*--format=csv,noheader,nounits*) cat {here}/apps.csv ;;
    *) echo "fake nvidia-smi: unexpected arguments: $*" >&2; exit 2 ;;
esac
"""
    path = bin_dir / "nvidia-smi"
    path.write_text(script)
    path.chmod(0o755)
    return bin_dir


def install_capture(bin_dir: Path, name: str) -> Path:
    """The fake answering with the capture NAME.csv (and NAME.apps.csv when there is one)."""
    apps = CAPTURES / f"{name}.apps.csv"
    return install(bin_dir, capture(name), apps=apps.read_text() if apps.is_file() else "")


def path_with(bin_dir: Path, base: str | None = None) -> str:
    """PATH with `bin_dir` first."""
    return f"{bin_dir}{os.pathsep}{base if base is not None else os.environ.get('PATH', '')}"


def captures() -> list[str]:
    """Every capture name (the machines), apps files excluded."""
    return sorted(p.stem for p in CAPTURES.glob("*.csv") if not p.name.endswith(".apps.csv"))
