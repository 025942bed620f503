"""Torchvision-free port of transformers' Qwen3VLVideoProcessor, shipped in the tiny checkpoint (auto_map +
trust_remote_code).

Why it exists: Qwen3VLProcessor refuses to load without a video processor, and every transformers 5.19
video processor requires torchvision, which cannot be installed next to CPU torch. It does what the real
one does (numpy + Pillow instead of torch + torchvision), so the suite's vLLM processes videos exactly as a
production server does: optional frame sampling (fps, min/max frames), resize of every frame onto the
32-pixel grid within `size` (a budget on frames x height x width), rescale + normalise, padding to a
multiple of the temporal patch (2 frames), patchify, and `video_grid_thw`. vLLM (0.32) calls `preprocess`
for every video and `get_num_of_video_patches` for token counts.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import transformers
from PIL import Image
from transformers.feature_extraction_utils import BatchFeature
from transformers.video_processing_utils import VideoProcessorMixin
from transformers.video_utils import VideoMetadata

# Without torchvision transformers does not export VideoProcessorMixin at top level, and
# ProcessorMixin's type check of the video processor looks the base class up there by name (otherwise:
# AttributeError: 'VIDEO_PROCESSOR_MAPPING' has no attribute '_extra_content'). Harmless with torchvision.
if not isinstance(getattr(transformers, "VideoProcessorMixin", None), type):
    transformers.VideoProcessorMixin = VideoProcessorMixin


def smart_resize(
    num_frames: int,
    height: int,
    width: int,
    *,
    temporal_factor: int,
    factor: int,
    min_pixels: int,
    max_pixels: int,
) -> tuple[int, int]:
    """Qwen3-VL's video resize rule: a 32-pixel grid, frames x height x width within [min, max] pixels."""
    if num_frames < temporal_factor:
        raise ValueError(f"t:{num_frames} must be larger than temporal_factor:{temporal_factor}")
    if height < factor or width < factor:
        scale = max(factor / height, factor / width)
        height, width = int(height * scale), int(width * scale)
    if max(height, width) / min(height, width) > 200:
        raise ValueError(
            f"absolute aspect ratio must be smaller than 200, got {max(height, width) / min(height, width)}"
        )
    h_bar = round(height / factor) * factor
    w_bar = round(width / factor) * factor
    t_bar = round(num_frames / temporal_factor) * temporal_factor
    if t_bar * h_bar * w_bar > max_pixels:
        beta = math.sqrt((num_frames * height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif t_bar * h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (num_frames * height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def _as_videos(videos: Any) -> list[np.ndarray]:
    """Accept one video (T,H,W,C array or list of frames) or (nested) lists of them; T,H,W,C uint8 out."""
    if hasattr(videos, "numpy") and not isinstance(videos, np.ndarray):
        videos = videos.numpy()
    if isinstance(videos, np.ndarray) and videos.ndim == 4:
        array = videos if videos.shape[-1] in (1, 3, 4) else videos.transpose(0, 2, 3, 1)
        return [array]
    if isinstance(videos, (list, tuple)) and videos:
        first = videos[0]
        if isinstance(first, Image.Image) or getattr(first, "ndim", 0) == 3:
            return [np.stack([np.asarray(frame) for frame in videos])]
        return [video for item in videos for video in _as_videos(item)]
    raise ValueError(f"Cannot read a video from {type(videos).__name__}")


def _as_metadata(metadata: Any) -> list[VideoMetadata | None]:
    if metadata is None:
        return []
    if isinstance(metadata, (list, tuple)):
        return [item for entry in metadata for item in _as_metadata(entry)]
    return [VideoMetadata(**metadata) if isinstance(metadata, dict) else metadata]


class TinyQwen3VLVideoProcessor(VideoProcessorMixin):
    """Qwen3VLVideoProcessor's defaults; the checkpoint's video_preprocessor_config.json overrides them."""

    size: ClassVar[dict[str, int]] = {"shortest_edge": 128 * 32 * 32, "longest_edge": 32 * 32 * 768}
    image_mean: ClassVar[list[float]] = [0.5, 0.5, 0.5]
    image_std: ClassVar[list[float]] = [0.5, 0.5, 0.5]
    resample = 3  # bicubic
    do_resize = True
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    do_convert_rgb = True
    patch_size = 16
    temporal_patch_size = 2
    merge_size = 2
    min_frames = 4
    max_frames = 768
    do_sample_frames = True
    fps = 2
    num_frames = None
    return_metadata = False
    model_input_names: ClassVar[list[str]] = ["pixel_values_videos", "video_grid_thw"]

    def __init__(self, **kwargs: Any) -> None:
        kwargs.pop("auto_map", None)
        kwargs.pop("video_processor_type", None)
        super().__init__(**kwargs)
        for name, value in kwargs.items():
            setattr(self, name, value)

    def sample_frames(
        self, metadata: VideoMetadata, num_frames: int | None = None, fps: float | None = None
    ) -> np.ndarray:
        """Frame indices as in Qwen3VLVideoProcessor: `fps` frames per second within [min, max] frames."""
        if fps is not None and num_frames is not None:
            raise ValueError("`num_frames` and `fps` are mutually exclusive arguments, please use only one!")
        total = metadata.total_num_frames
        fps = fps if fps is not None else self.fps
        if num_frames is None and fps is not None:
            if metadata.fps is None:
                metadata.fps = 24
            num_frames = int(total / metadata.fps * fps)
            num_frames = min(max(num_frames, self.min_frames), self.max_frames, total)
        if num_frames is None:
            num_frames = min(max(total, self.min_frames), self.max_frames)
        return np.linspace(0, total - 1, num_frames).round().astype(int)

    def preprocess(
        self,
        videos: Any,
        video_metadata: Any = None,
        do_sample_frames: bool | None = None,
        fps: float | None = None,
        num_frames: int | None = None,
        size: dict[str, int] | None = None,
        patch_size: int | None = None,
        temporal_patch_size: int | None = None,
        merge_size: int | None = None,
        image_mean: list[float] | None = None,
        image_std: list[float] | None = None,
        rescale_factor: float | None = None,
        return_metadata: bool | None = None,
        return_tensors: Any = None,
        **_ignored: Any,
    ) -> BatchFeature:
        size = dict(size or self.size)
        patch = patch_size or self.patch_size
        temporal = temporal_patch_size or self.temporal_patch_size
        merge = merge_size or self.merge_size
        mean = np.asarray(image_mean or self.image_mean, dtype=np.float32).reshape(1, 3, 1, 1)
        std = np.asarray(image_std or self.image_std, dtype=np.float32).reshape(1, 3, 1, 1)
        rescale = rescale_factor or self.rescale_factor
        sample = self.do_sample_frames if do_sample_frames is None else do_sample_frames
        if fps is None and num_frames is None:
            fps = self.fps
        arrays = _as_videos(videos)
        metadata = _as_metadata(video_metadata) or [None] * len(arrays)
        patches, grids, metadata_out = [], [], []
        for video, meta in zip(arrays, metadata, strict=True):
            if meta is None:
                meta = VideoMetadata(total_num_frames=len(video), fps=None)
            if meta.total_num_frames is None:
                meta.total_num_frames = len(video)
            if sample:
                indices = self.sample_frames(meta, num_frames=num_frames, fps=None if num_frames else fps)
                video = video[indices]
                meta.frames_indices = indices.tolist()
            elif getattr(meta, "frames_indices", None) is None:
                meta.frames_indices = list(range(len(video)))
            flat, grid = self._patchify(
                video, size=size, patch=patch, temporal=temporal, merge=merge, scale=(rescale, mean, std)
            )
            patches.append(flat)
            grids.append(grid)
            metadata_out.append(meta)
        data = {
            "pixel_values_videos": np.concatenate(patches, axis=0),
            "video_grid_thw": np.asarray(grids, dtype=np.int64),
        }
        out = BatchFeature(data=data, tensor_type=return_tensors)
        if self.return_metadata if return_metadata is None else return_metadata:
            out["video_metadata"] = metadata_out
        return out

    def _patchify(
        self,
        video: np.ndarray,
        *,
        size: dict[str, int],
        patch: int,
        temporal: int,
        merge: int,
        scale: tuple[float, np.ndarray, np.ndarray],
    ) -> tuple[np.ndarray, list[int]]:
        """Resize, normalise and cut one T,H,W,C video into Qwen3-VL's flat (seq_len, patch_dim) layout."""
        frames, height, width = video.shape[0], video.shape[1], video.shape[2]
        new_h, new_w = smart_resize(
            max(frames, temporal),
            height,
            width,
            temporal_factor=temporal,
            factor=patch * merge,
            min_pixels=size["shortest_edge"],
            max_pixels=size["longest_edge"],
        )
        resized = [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(frame[..., :3]).astype(np.uint8))
                .convert("RGB")
                .resize((new_w, new_h), Image.Resampling.BICUBIC)
            )
            for frame in video
        ]
        rescale, mean, std = scale
        array = (np.stack(resized).astype(np.float32).transpose(0, 3, 1, 2) * rescale - mean) / std
        if pad := -array.shape[0] % temporal:
            array = np.concatenate([array, np.repeat(array[-1:], pad, axis=0)], axis=0)
        channels = array.shape[1]
        grid_t, grid_h, grid_w = array.shape[0] // temporal, new_h // patch, new_w // patch
        blocks = array.reshape(
            grid_t, temporal, channels, grid_h // merge, merge, patch, grid_w // merge, merge, patch
        ).transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
        flat = blocks.reshape(grid_t * grid_h * grid_w, channels * temporal * patch * patch)
        return flat, [grid_t, grid_h, grid_w]

    def get_num_of_video_patches(
        self, num_frames: int, height: int, width: int, videos_kwargs: dict[str, Any] | None = None
    ) -> int:
        """Patches (before the 2x2 merge) of a video of this size, as `preprocess` would make them."""
        kwargs = videos_kwargs or {}
        size = kwargs.get("size") or self.size
        patch = kwargs.get("patch_size") or self.patch_size
        merge = kwargs.get("merge_size") or self.merge_size
        temporal = kwargs.get("temporal_patch_size") or self.temporal_patch_size
        new_h, new_w = smart_resize(
            num_frames,
            height,
            width,
            temporal_factor=temporal,
            factor=patch * merge,
            min_pixels=size["shortest_edge"],
            max_pixels=size["longest_edge"],
        )
        grid_t = (num_frames + -num_frames % temporal) // temporal
        return grid_t * (new_h // patch) * (new_w // patch)
