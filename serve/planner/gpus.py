"""GPUs the planner knows: memory as nvidia-smi reports it and peak memory bandwidth from the data sheets."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Gpu(BaseModel):
    """One GPU model."""

    key: str = Field(description="Name used on the command line (--gpu).")
    label: str = Field(description="Human-readable name.")
    memory_gib: float = Field(description="Total memory as nvidia-smi reports it, GiB.")
    bandwidth_tb_s: float = Field(description="Peak memory bandwidth, TB/s (10^12 bytes per second).")


GPUS: dict[str, Gpu] = {
    gpu.key: gpu
    for gpu in (
        Gpu(key="h100", label="H100 80GB SXM", memory_gib=79.6, bandwidth_tb_s=3.35),
        Gpu(key="h200", label="H200 141GB", memory_gib=140.4, bandwidth_tb_s=4.8),
        Gpu(key="a100-80gb", label="A100 80GB SXM", memory_gib=80.0, bandwidth_tb_s=2.039),
        Gpu(key="a100-40gb", label="A100 40GB", memory_gib=40.0, bandwidth_tb_s=1.555),
        Gpu(key="l40s", label="L40S 48GB", memory_gib=45.0, bandwidth_tb_s=0.864),
        Gpu(key="a10g", label="A10G 24GB", memory_gib=22.5, bandwidth_tb_s=0.6),
        Gpu(key="l4", label="L4 24GB", memory_gib=22.5, bandwidth_tb_s=0.3),
        Gpu(key="rtx4090", label="RTX 4090 24GB", memory_gib=24.0, bandwidth_tb_s=1.008),
        Gpu(key="rtx3090", label="RTX 3090 24GB", memory_gib=24.0, bandwidth_tb_s=0.936),
    )
}


class UnknownGpuError(LookupError):
    """A --gpu name that is not in the table."""


README_GPUS = ("h100", "a100-80gb", "a100-40gb", "l40s", "l4", "rtx4090")


def find_gpu(name: str) -> Gpu:
    """Look a GPU up by its key, forgivingly ('RTX 4090', 'rtx-4090' and 'rtx4090' are one)."""
    wanted = _normalise(name)
    for gpu in GPUS.values():
        if wanted in (_normalise(gpu.key), _normalise(gpu.label)):
            return gpu
    raise UnknownGpuError(f"unknown GPU {name!r}; known: {', '.join(GPUS)} (or give --gpu-memory-gib N)")


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())
