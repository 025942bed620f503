"""Torchvision-free video processor shipped in the tiny checkpoint (loaded via auto_map + trust_remote_code).

Why it exists: Qwen3VLProcessor refuses to load without a video processor, and every transformers 5.19
video processor requires torchvision, which cannot be installed next to CPU torch.

Why it processes nothing: the tiny profile sets the video limit to 0, and with that vLLM (0.32, CPU) only
reads this processor's settings (size, patch/merge sizes, fps, frame bounds from the checkpoint's
video_preprocessor_config.json); it never calls `preprocess` or `get_num_of_video_patches`, neither at
start-up nor for image requests (checked by making both raise). So both raise a clear error instead of
porting Qwen3VLVideoProcessor.
"""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn

import transformers
from transformers.video_processing_utils import VideoProcessorMixin

# Without torchvision transformers does not export VideoProcessorMixin at top level, and
# ProcessorMixin's type check of the video processor looks the base class up there by name (otherwise:
# AttributeError: 'VIDEO_PROCESSOR_MAPPING' has no attribute '_extra_content'). Harmless with torchvision.
if not isinstance(getattr(transformers, "VideoProcessorMixin", None), type):
    transformers.VideoProcessorMixin = VideoProcessorMixin

_NO_VIDEO = "The tiny test checkpoint cannot process videos; serve it with a video limit of 0."


class TinyQwen3VLVideoProcessor(VideoProcessorMixin):
    """Holds the video settings from the checkpoint's config (set as attributes in __init__); no videos."""

    model_input_names: ClassVar[list[str]] = ["pixel_values_videos", "video_grid_thw"]

    def __init__(self, **kwargs: Any) -> None:
        kwargs.pop("auto_map", None)
        super().__init__(**kwargs)

    def preprocess(self, videos: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(_NO_VIDEO)

    def get_num_of_video_patches(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise NotImplementedError(_NO_VIDEO)
