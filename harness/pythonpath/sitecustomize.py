"""Import hook that lets vLLM's Qwen-VL model code load without torchvision (test servers only).

Why: vLLM's qwen2_vl / qwen3_vl modules import
`transformers.models.qwen2_vl.image_processing_qwen2_vl`, which in transformers 5.x imports torchvision
unconditionally; torchvision cannot be installed next to CPU torch, so vLLM would report that the
Qwen3VLForConditionalGeneration architecture "failed to be inspected". This hook serves that one module
from transformers' PIL implementation (`image_processing_pil_qwen2_vl`: same smart_resize, with
Qwen2VLImageProcessor aliased to Qwen2VLImageProcessorPil).

It is loaded because the harness puts this folder on PYTHONPATH, which vLLM's worker processes inherit.
Whether torchvision works is checked only when the module is first imported (not at every interpreter
start), and where torchvision imports the hook steps aside.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

_SHIMMED_MODULE = "transformers.models.qwen2_vl.image_processing_qwen2_vl"


def _torchvision_works() -> bool:
    try:
        import torchvision  # noqa: F401
    except Exception:  # absent, or a CUDA build that fails next to CPU torch
        return False
    return True


class _PilQwen2VLImageProcessing(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds and loads the shimmed module; leaves every other import alone."""

    def __init__(self) -> None:
        self._use_original: bool | None = None

    def find_spec(
        self, name: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if name != _SHIMMED_MODULE:
            return None
        if self._use_original is None:
            self._use_original = _torchvision_works()
        return None if self._use_original else importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None  # default module creation

    def exec_module(self, module: ModuleType) -> None:
        from transformers.models.qwen2_vl import image_processing_pil_qwen2_vl as pil

        module.__dict__.update({key: value for key, value in vars(pil).items() if not key.startswith("__")})
        module.Qwen2VLImageProcessor = pil.Qwen2VLImageProcessorPil


sys.meta_path.insert(0, _PilQwen2VLImageProcessing())
