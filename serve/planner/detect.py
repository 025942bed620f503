"""The GPUs of this machine, from nvidia-smi, or the ones the user names instead (--gpu, --gpu-memory-gib, SERVE_GPU).

nvidia-smi is on every NVIDIA host and inside the vLLM image, so its CSV output is parsed rather than a
driver library loaded. `memory.free` is what is free: the driver reserves ~0.5 GiB that neither
`memory.used` nor any process shows, so total minus used overstates it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from enum import StrEnum

from pydantic import BaseModel, Field

from serve.planner.gpus import Gpu, UnknownGpuError, find_gpu, gpu_kind_of

GPU_QUERY = ["--query-gpu=index,name,memory.total,memory.used,memory.free", "--format=csv,noheader,nounits"]
APPS_QUERY = ["--query-compute-apps=pid,process_name,used_memory", "--format=csv,noheader,nounits"]
SMI_TIMEOUT_SECONDS = 15.0
# What an idle GPU keeps back for the driver (memory.total - memory.free with nothing running), used for a
# GPU named with --gpu instead of detected: 471 MiB captured on an L4; real GPUs reserve ~0.4-0.6 GiB.
IDLE_RESERVED_MIB = 512
SERVE_GPU_VARIABLE = "SERVE_GPU"


class GpuSource(StrEnum):
    NVIDIA_SMI = "nvidia-smi"
    OPTION = "--gpu"
    VARIABLE = SERVE_GPU_VARIABLE


class GpuProcess(BaseModel):
    """A process holding GPU memory, as `nvidia-smi --query-compute-apps` names it."""

    pid: int | None = Field(description="Process id (the host's inside a container; None when not shown).")
    name: str = Field(description="Process name or path.")
    used_mib: int | None = Field(description="GPU memory it holds, MiB (None when nvidia-smi cannot tell).")

    def describe(self) -> str:
        held = f"{self.used_mib:,} MiB" if self.used_mib is not None else "memory not reported"
        return f"pid {self.pid if self.pid is not None else '?'} {self.name} ({held})"


class DetectedGpu(BaseModel):
    """One GPU of the machine (or of the kind the user named), with what is in use right now."""

    index: int = Field(description="nvidia-smi index: what CUDA_VISIBLE_DEVICES and compose device_ids take.")
    name: str = Field(description="Name as nvidia-smi prints it, or the label of the --gpu kind.")
    total_mib: int = Field(description="memory.total, MiB.")
    used_mib: int = Field(description="memory.used, MiB.")
    free_mib: int = Field(description="memory.free, MiB: what a new process can allocate.")
    kind: Gpu | None = Field(None, description="The known GPU kind (bandwidth, FP8 support), if recognised.")

    @property
    def total_gib(self) -> float:
        return self.total_mib / 1024

    @property
    def free_gib(self) -> float:
        return self.free_mib / 1024

    @property
    def in_use_gib(self) -> float:
        """Everything not free: the driver's reserve plus what processes hold."""
        return max(0, self.total_mib - self.free_mib) / 1024

    def describe(self) -> str:
        return f"GPU {self.index}: {self.name}, {self.total_gib:.1f} GiB, {self.in_use_gib:.1f} GiB in use"

    @classmethod
    def idle(cls, kind: Gpu, index: int = 0) -> DetectedGpu:
        """A GPU of a known kind with nothing running on it."""
        return cls.of_size(kind.label, kind.memory_mib, index=index, kind=kind)

    @classmethod
    def of_size(cls, name: str, total_mib: int, *, index: int = 0, kind: Gpu | None = None) -> DetectedGpu:
        free = max(0, total_mib - IDLE_RESERVED_MIB)
        return cls(index=index, name=name, total_mib=total_mib, used_mib=0, free_mib=free, kind=kind)


class GpuSurvey(BaseModel):
    """The GPUs the placement works with, where they came from, and who holds memory on them."""

    gpus: list[DetectedGpu] = Field(description="GPUs in index order; empty = none found.")
    source: GpuSource | None = Field(description="Where they came from; None = none found.")
    processes: list[GpuProcess] = Field(default_factory=list, description="Processes holding GPU memory.")
    note: str = Field("", description="Why no GPU was found, or how the list was narrowed.")

    @property
    def found(self) -> bool:
        return bool(self.gpus)

    def describe(self) -> str:
        """One line per GPU, with where the figures came from."""
        if not self.gpus:
            return f"no NVIDIA GPU found ({self.note})"
        origin = "" if self.source is GpuSource.NVIDIA_SMI else f" (as given with {self.source.value})"
        lines = [gpu.describe() + origin for gpu in self.gpus]
        return "\n".join(lines + ([self.note] if self.note else []))


class GpuDetectionError(ValueError):
    """nvidia-smi answered something we cannot read; the message says what and what to do."""


def parse_gpu_csv(text: str) -> list[DetectedGpu]:
    """`--query-gpu=index,name,memory.total,memory.used,memory.free` output, with or without header and units."""
    gpus = []
    for line in text.splitlines():
        if not line.strip() or line.lower().startswith("index"):
            continue
        fields = [field.strip() for field in line.rsplit(",", 3)]
        head = fields[0].split(",", 1) if len(fields) == 4 else []
        if len(head) != 2:
            raise GpuDetectionError(
                f"nvidia-smi printed {line.strip()!r}, not 'index, name, total, used, free'"
            )
        index, name = head[0].strip(), head[1].strip()
        try:
            total, used, free = (_mib(value) for value in fields[1:])
            gpus.append(DetectedGpu(index=int(index), name=name, total_mib=total, used_mib=used, free_mib=free,
                                    kind=gpu_kind_of(name)))  # fmt: skip
        except ValueError:
            raise GpuDetectionError(
                f"nvidia-smi printed {line.strip()!r}: no memory figures for this GPU (MIG or an unsupported "
                "device); give its size with --gpu-memory-gib N or SERVE_GPU"
            ) from None
    return gpus


def parse_apps_csv(text: str) -> list[GpuProcess]:
    """`--query-compute-apps=pid,process_name,used_memory` output; unreadable fields become None."""
    processes = []
    for line in text.splitlines():
        if not line.strip() or line.lower().startswith("pid"):
            continue
        pid, _, rest = line.partition(",")
        name, _, used = rest.rpartition(",")
        processes.append(
            GpuProcess(
                pid=int(pid) if pid.strip().isdigit() else None,
                name=name.strip() or "?",
                used_mib=_mib(used) if re.fullmatch(r"\s*\d+(\s*MiB)?\s*", used) else None,
            )
        )
    return processes


def _mib(value: str) -> int:
    return int(value.strip().removesuffix("MiB").strip())


def _run_smi(binary: str, args: Sequence[str]) -> str:
    try:
        result = subprocess.run(
            [binary, *args], capture_output=True, text=True, timeout=SMI_TIMEOUT_SECONDS, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GpuDetectionError(f"{binary} could not be run: {exc}") from None
    if result.returncode != 0:
        said = (result.stdout + result.stderr).strip().splitlines()
        raise GpuDetectionError(
            f"{binary} failed (exit {result.returncode}): {said[0] if said else 'no output'}"
        )
    return result.stdout


def _visible(gpus: list[DetectedGpu], environ: Mapping[str, str]) -> tuple[list[DetectedGpu], str]:
    """Only the GPUs CUDA_VISIBLE_DEVICES lets processes see (nvidia-smi itself ignores the variable)."""
    value = environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return gpus, ""
    wanted = [part.strip() for part in value.split(",") if part.strip()]
    if not wanted:
        return [], "CUDA_VISIBLE_DEVICES is empty: processes see no GPU"
    if not all(part.isdigit() for part in wanted):
        return gpus, f"CUDA_VISIBLE_DEVICES={value} is not a list of indices: every GPU is considered"
    by_index = {gpu.index: gpu for gpu in gpus}
    kept = [by_index[int(part)] for part in wanted if int(part) in by_index]
    return kept, f"only the GPUs in CUDA_VISIBLE_DEVICES={value}"


def _smi(environ: Mapping[str, str]) -> str | None:
    return shutil.which("nvidia-smi", path=environ.get("PATH", os.defpath))


def query_processes(environ: Mapping[str, str] | None = None) -> list[GpuProcess] | None:
    """The processes holding GPU memory (`serve status`, the placement's messages); None without nvidia-smi.
    Raises GpuDetectionError when nvidia-smi is there but fails."""
    binary = _smi(os.environ if environ is None else environ)
    return None if binary is None else parse_apps_csv(_run_smi(binary, APPS_QUERY))


def detect_gpus(environ: Mapping[str, str] | None = None) -> GpuSurvey:
    """Ask nvidia-smi (on PATH) for the GPUs and for the processes that hold memory on them."""
    environ = os.environ if environ is None else environ
    binary = _smi(environ)
    if binary is None:
        return GpuSurvey(gpus=[], source=None, note="nvidia-smi is not on PATH")
    try:
        gpus = parse_gpu_csv(_run_smi(binary, GPU_QUERY))
    except GpuDetectionError as exc:
        return GpuSurvey(gpus=[], source=None, note=str(exc))
    gpus, note = _visible(gpus, environ)
    try:
        processes = parse_apps_csv(_run_smi(binary, APPS_QUERY))
    except GpuDetectionError:
        processes = []  # only used to explain memory in use; the GPU figures above stand
    return GpuSurvey(gpus=gpus, source=GpuSource.NVIDIA_SMI, processes=processes, note=note)


_COUNT_PREFIX = re.compile(r"^\s*(\d+)\s*[x×*]\s*(.+)$", re.IGNORECASE)


_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:gib)?", re.IGNORECASE)


def gpus_named(spec: str) -> list[DetectedGpu]:
    """'l4', '2xl4', '2 x RTX 4090' or '24' (GiB): idle GPUs of a known kind or size, indices from 0."""
    count, name = 1, spec.strip()
    if match := _COUNT_PREFIX.match(name):
        count, name = int(match.group(1)), match.group(2).strip()
    if not 1 <= count <= 16:
        raise UnknownGpuError(f"{spec!r}: give between 1 and 16 GPUs, e.g. 2xl4")
    if size := _SIZE.fullmatch(name):
        return gpus_of_size(float(size.group(1)), count)
    kind = find_gpu(name)
    return [DetectedGpu.idle(kind, index) for index in range(count)]


def gpus_of_size(gib: float, count: int = 1) -> list[DetectedGpu]:
    if not 0 < gib < 10_000:
        raise UnknownGpuError(f"{gib:g} GiB is not a GPU memory size; give e.g. 24 or 79.6")
    return [DetectedGpu.of_size(f"{gib:g} GiB GPU", round(gib * 1024), index=i) for i in range(count)]


def survey_gpus(
    *, gpu: str | None = None, gpu_memory_gib: float | None = None, environ: Mapping[str, str] | None = None
) -> GpuSurvey:
    """The GPUs to place on: --gpu-memory-gib or --gpu, else SERVE_GPU, else what nvidia-smi reports."""
    environ = os.environ if environ is None else environ
    if gpu_memory_gib is not None:
        return GpuSurvey(gpus=gpus_of_size(gpu_memory_gib), source=GpuSource.OPTION)
    if gpu:
        return GpuSurvey(gpus=gpus_named(gpu), source=GpuSource.OPTION)
    if variable := environ.get(SERVE_GPU_VARIABLE, "").strip():
        try:
            return GpuSurvey(gpus=gpus_named(variable), source=GpuSource.VARIABLE)
        except UnknownGpuError as exc:
            raise UnknownGpuError(f"{SERVE_GPU_VARIABLE}: {exc}") from None
    return detect_gpus(environ)
