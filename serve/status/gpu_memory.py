"""GPU memory per process, from nvidia-smi's list of compute processes (the host's pids)."""

from __future__ import annotations

import shutil
import subprocess

from pydantic import BaseModel, Field

NVIDIA_SMI = "nvidia-smi"
QUERY = ["--query-compute-apps=pid,process_name,used_memory", "--format=csv,noheader,nounits"]
TIMEOUT_SECONDS = 10.0


class GpuProcess(BaseModel):
    pid: int = Field(description="Process id as nvidia-smi reports it (the host's).")
    name: str = Field(description="Process name.")
    used_mib: int = Field(description="GPU memory the process holds, MiB.")


class GpuQueryError(Exception):
    """nvidia-smi is there but did not answer usefully; the message says what it said."""


def gpu_processes() -> list[GpuProcess] | None:
    """Every process holding GPU memory; None when there is no nvidia-smi (no NVIDIA GPU or driver)."""
    if shutil.which(NVIDIA_SMI) is None:
        return None
    try:
        result = subprocess.run(
            [NVIDIA_SMI, *QUERY], capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GpuQueryError(f"{NVIDIA_SMI} did not run: {exc}") from None
    if result.returncode != 0:
        said = (result.stderr or result.stdout).strip().splitlines()
        raise GpuQueryError(f"{NVIDIA_SMI} failed: {said[0] if said else f'exit code {result.returncode}'}")
    processes = []
    for line in result.stdout.splitlines():
        fields = [field.strip() for field in line.split(",")]
        # "[N/A]" pids or memory (containers, MIG) cannot be attributed: skip them.
        if len(fields) == 3 and fields[0].isdigit() and fields[2].isdigit():
            processes.append(GpuProcess(pid=int(fields[0]), name=fields[1], used_mib=int(fields[2])))
    return processes


def memory_held(pids: set[int], processes: list[GpuProcess]) -> int:
    """MiB of GPU memory the given processes hold."""
    return sum(process.used_mib for process in processes if process.pid in pids)
