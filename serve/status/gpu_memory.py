"""GPU memory per process, from nvidia-smi's list of compute processes (the host's pids), as the planner reads it
(serve.planner.detect)."""

from __future__ import annotations

from serve.planner.detect import GpuDetectionError as GpuQueryError
from serve.planner.detect import GpuProcess, query_processes

__all__ = ["GpuProcess", "GpuQueryError", "gpu_processes", "memory_held"]


def gpu_processes() -> list[GpuProcess] | None:
    """Every process holding GPU memory; None when there is no nvidia-smi (no NVIDIA GPU or driver)."""
    return query_processes()


def memory_held(pids: set[int], processes: list[GpuProcess]) -> int:
    """MiB of GPU memory the given processes hold ("[N/A]" pids or memory, as in containers, count as none)."""
    return sum(p.used_mib or 0 for p in processes if p.pid is not None and p.pid in pids)
