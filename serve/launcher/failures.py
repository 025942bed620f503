"""vLLM start-up failures we recognise in its log, each with what to change."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from serve.planner.plan import MAX_GPU_SHARE


class Failure(Enum):
    KV_CACHE_TOO_SMALL = "kv-cache-too-small"
    NO_CACHE_MEMORY = "no-cache-memory"
    GPU_MEMORY_TAKEN = "gpu-memory-taken"
    CPU_MEMORY_TAKEN = "cpu-memory-taken"
    CUDA_OOM = "cuda-oom"
    UNKNOWN_OPTION = "unknown-option"
    PORT_IN_USE = "port-in-use"
    MODEL_NOT_FOUND = "model-not-found"
    HUB_UNREACHABLE = "hub-unreachable"


@dataclass(frozen=True)
class KnownFailure:
    failure: Failure
    pattern: re.Pattern[str]
    advice: str


_PLAN = "`python -m serve plan {profile}` shows what fits."
KNOWN_FAILURES: tuple[KnownFailure, ...] = (
    KnownFailure(
        Failure.KV_CACHE_TOO_SMALL,
        re.compile(r"KV cache is needed, which is larger than the available KV cache memory"),
        "The KV cache cannot hold one request of max-model-len. Lower max-model-len "
        "({family}_MAX_MODEL_LEN=16384), raise the GPU share ({family}_GPU_MEMORY_UTILIZATION), or use an FP8 "
        "profile or the 4B model. " + _PLAN,
    ),
    KnownFailure(
        Failure.NO_CACHE_MEMORY,
        re.compile(r"No available memory for the cache blocks"),
        "The weights take the whole GPU share. Raise {family}_GPU_MEMORY_UTILIZATION, or use an FP8 profile or "
        "the 4B model. " + _PLAN,
    ),
    KnownFailure(
        Failure.GPU_MEMORY_TAKEN,
        re.compile(r"Free memory on device .* is less than desired GPU memory utilization"),
        "Another process holds part of the GPU (often the other model). Start instances one after another, "
        f"let the placement size the share (unset {{family}}_GPU_MEMORY_UTILIZATION; shares on one GPU add up to "
        f"at most {MAX_GPU_SHARE:g}), or stop the other process (nvidia-smi lists them). " + _PLAN,
    ),
    KnownFailure(
        Failure.CPU_MEMORY_TAKEN,
        re.compile(r"less than desired CPU memory utilization"),
        "vLLM's CPU build sees too little free memory on the NUMA node: give the profile a fixed "
        "kv-cache-memory-bytes (e.g. 64M) or set VLLM_CPU_KVCACHE_SPACE in GiB.",
    ),
    KnownFailure(
        Failure.CUDA_OOM,
        re.compile(r"CUDA out of memory|torch\.OutOfMemoryError"),
        "The GPU ran out of memory. Use the 4B model or an FP8 profile, a shorter context "
        "({family}_MAX_MODEL_LEN), or a lower {family}_GPU_MEMORY_UTILIZATION if other processes share the GPU. "
        + _PLAN,
    ),
    KnownFailure(
        Failure.UNKNOWN_OPTION,
        re.compile(r"unrecognized arguments|invalid choice|error: argument"),
        "vLLM rejected an option of the profile: fix or remove the key it names in {path} (keys are vLLM CLI "
        "options; `vllm serve --help` lists them).",
    ),
    KnownFailure(
        Failure.PORT_IN_USE,
        re.compile(r"Address already in use|address already in use"),
        "The port is taken: stop the other server or pass --port.",
    ),
    KnownFailure(
        Failure.MODEL_NOT_FOUND,
        re.compile(
            r"Repository Not Found|is not a local folder and is not a valid model identifier|401 Client Error"
            r"|Repo id must be in the form"
        ),
        "The model could not be found: check `model:` in {path}; gated or private models need HF_TOKEN.",
    ),
    KnownFailure(
        Failure.HUB_UNREACHABLE,
        re.compile(r"LocalEntryNotFoundError|cannot find the requested files in the local cache"),
        "vLLM could not download the weights (no connection to the Hugging Face Hub, or HF_HUB_OFFLINE is set "
        "and they are not in the cache). Check the network or proxy, download them once into the cache "
        "(HF_HOME), or point `model:` in {path} at a local directory.",
    ),
)


def diagnose(log_lines: list[str]) -> list[KnownFailure]:
    """The known failures whose pattern appears in the log, in the order of the table."""
    return [known for known in KNOWN_FAILURES if any(known.pattern.search(line) for line in log_lines)]


_ERROR_LINE = re.compile(
    r"\b(ERROR|Error|error|Exception|Traceback)\b|\w(Error|Exception): |exceeds|is less than|is larger than"
)
# vLLM's own INFO/WARNING lines mention errors they merely warn about (e.g. the ulimit warning).
_NOT_AN_ERROR = re.compile(r"\b(INFO|WARNING|DEBUG) \d\d-\d\d ")


def error_lines(log_lines: list[str], limit: int = 12) -> list[str]:
    """vLLM's own error lines (deduplicated, last ones first kept), or the log's tail when none match."""
    picked: list[str] = []
    for line in log_lines:
        text = line.rstrip()
        if _ERROR_LINE.search(text) and not _NOT_AN_ERROR.search(text) and text not in picked:
            picked.append(text)
    return picked[-limit:] if picked else [line.rstrip() for line in log_lines[-limit:]]
