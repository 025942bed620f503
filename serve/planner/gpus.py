"""GPU kinds the planner knows: memory as nvidia-smi reports it, the names it prints, and data-sheet figures."""

from __future__ import annotations

from pydantic import BaseModel, Field

MIB = 2**20
GIB = 2**30


class Gpu(BaseModel):
    """One GPU model (a kind, not a device: see serve.planner.detect for the GPUs of a machine)."""

    key: str = Field(description="Name used on the command line (--gpu, SERVE_GPU).")
    label: str = Field(description="Human-readable name.")
    memory_mib: int = Field(description="Total memory as nvidia-smi reports it (memory.total), MiB.")
    bandwidth_tb_s: float = Field(
        description="Peak memory bandwidth, TB/s (10^12 bytes per second); 0 = unknown."
    )
    compute_capability: float | None = Field(
        None, description="CUDA compute capability (8.9 = Ada, 9.0 = Hopper); None = unknown."
    )
    dense_bf16_tflops: float | None = Field(
        None, description="Data-sheet dense BF16/FP16 tensor throughput with FP32 accumulation, TFLOPS."
    )
    smi_names: list[str] = Field(default_factory=list, description="Names nvidia-smi prints for it.")

    @property
    def memory_gib(self) -> float:
        return self.memory_mib / 1024

    @property
    def supports_fp8_kv_cache(self) -> bool | None:
        """vLLM's FP8 KV cache needs FP8 hardware: compute capability 8.9 (Ada) or newer; None = unknown."""
        return None if self.compute_capability is None else self.compute_capability >= 8.9


# Totals in MiB are what nvidia-smi prints for each card (memory.total); bandwidth and TFLOPS from the data
# sheets (GeForce cards: tensor throughput with FP32 accumulation, which is half their FP16-accumulate rate).
GPUS: dict[str, Gpu] = {
    gpu.key: gpu
    for gpu in (
        Gpu(key="rtx3060", label="RTX 3060 12GB", memory_mib=12288, bandwidth_tb_s=0.36,
            compute_capability=8.6, smi_names=["NVIDIA GeForce RTX 3060"]),
        Gpu(key="t4", label="T4 16GB", memory_mib=15360, bandwidth_tb_s=0.32, compute_capability=7.5,
            dense_bf16_tflops=65.0, smi_names=["Tesla T4"]),
        Gpu(key="l4", label="L4 24GB", memory_mib=23034, bandwidth_tb_s=0.3, compute_capability=8.9,
            dense_bf16_tflops=121.0, smi_names=["NVIDIA L4"]),
        Gpu(key="a10g", label="A10G 24GB", memory_mib=23028, bandwidth_tb_s=0.6, compute_capability=8.6,
            smi_names=["NVIDIA A10G"]),
        Gpu(key="rtx3090", label="RTX 3090 24GB", memory_mib=24576, bandwidth_tb_s=0.936,
            compute_capability=8.6, dense_bf16_tflops=35.6, smi_names=["NVIDIA GeForce RTX 3090"]),
        Gpu(key="rtx4090", label="RTX 4090 24GB", memory_mib=24564, bandwidth_tb_s=1.008,
            compute_capability=8.9, dense_bf16_tflops=82.6, smi_names=["NVIDIA GeForce RTX 4090"]),
        Gpu(key="a100-40gb", label="A100 40GB", memory_mib=40960, bandwidth_tb_s=1.555, compute_capability=8.0,
            dense_bf16_tflops=312.0, smi_names=["NVIDIA A100-SXM4-40GB", "NVIDIA A100-PCIE-40GB"]),
        Gpu(key="l40s", label="L40S 48GB", memory_mib=46068, bandwidth_tb_s=0.864, compute_capability=8.9,
            dense_bf16_tflops=362.0, smi_names=["NVIDIA L40S"]),
        Gpu(key="a100-80gb", label="A100 80GB SXM", memory_mib=81920, bandwidth_tb_s=2.039,
            compute_capability=8.0, dense_bf16_tflops=312.0,
            smi_names=["NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB PCIe"]),
        Gpu(key="h100", label="H100 80GB SXM", memory_mib=81559, bandwidth_tb_s=3.35, compute_capability=9.0,
            dense_bf16_tflops=989.0, smi_names=["NVIDIA H100 80GB HBM3"]),
        Gpu(key="h200", label="H200 141GB", memory_mib=143771, bandwidth_tb_s=4.8, compute_capability=9.0,
            dense_bf16_tflops=989.0, smi_names=["NVIDIA H200"]),
    )
}  # fmt: skip


class UnknownGpuError(LookupError):
    """A --gpu name that is not in the table."""


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.lower() if ch.isalnum())


def find_gpu(name: str) -> Gpu:
    """Look a GPU up by its key, label or nvidia-smi name, forgivingly ('RTX 4090', 'rtx-4090', 'rtx4090')."""
    if gpu := gpu_kind_of(name):
        return gpu
    raise UnknownGpuError(f"unknown GPU {name!r}; known: {', '.join(GPUS)} (or give --gpu-memory-gib N)")


def gpu_kind_of(name: str) -> Gpu | None:
    """The kind a name (key, label or what nvidia-smi prints) refers to, or None."""
    wanted = _normalise(name)
    for gpu in GPUS.values():
        if wanted in {_normalise(gpu.key), _normalise(gpu.label), *map(_normalise, gpu.smi_names)}:
            return gpu
    return None
