"""Model profiles: vLLM config files (`vllm serve --config FILE`) with the fields this project relies on typed.

A profile is read exactly as vLLM reads it, so the container and the bare-metal launcher run the same
settings. Keys we do not model (any other vLLM option) pass through untouched.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from serve.config.overrides import ProfileOverrides

# vLLM 0.32's QUANTIZATION_METHODS (vllm/model_executor/layers/quantization/__init__.py), copied so that
# `serve check` runs where vLLM is not installed; a test compares it with the installed vLLM.
QuantizationMethod = Literal[
    "awq",
    "auto_awq",
    "fp8",
    "fbgemm_fp8",
    "fp_quant",
    "modelopt",
    "modelopt_fp4",
    "modelopt_mxfp8",
    "modelopt_mixed",
    "auto_gptq",
    "gptq",
    "gptq_marlin",
    "awq_marlin",
    "humming",
    "compressed-tensors",
    "experts_int8",
    "quark",
    "moe_wna16",
    "torchao",
    "inc",
    "mxfp4",
    "gpt_oss_mxfp4",
    "deepseek_v4_fp8",
    "online",
    "fp8_per_tensor",
    "fp8_per_block",
    "fp8_per_channel",
    "int8_per_channel_weight_only",
    "nvfp4_per_token",
    "mxfp8",
]
QUANTIZATION_METHODS: tuple[str, ...] = get_args(QuantizationMethod)
MODALITIES = ("image", "video", "audio")

_HUMAN_INT = re.compile(r"(\d+(?:\.\d+)?)([kKmMgGtT]?)")
_DECIMAL = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
_BINARY = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_human_int(value: int | str) -> int:
    """vLLM's human-readable integers: 32768, '32k' (x1000) or '32K' (x1024), as its CLI accepts them."""
    if isinstance(value, int):
        return value
    match = _HUMAN_INT.fullmatch(str(value).strip())
    if not match:
        raise ValueError(f"{value!r} is not a whole number (examples: 32768, 32k, 64M)")
    number, suffix = match.groups()
    return int(float(number) * _DECIMAL[suffix]) if suffix in _DECIMAL else int(number) * _BINARY[suffix]


VLLM_DEFAULT_MM_LIMIT = 999
QWEN_DEFAULT_MAX_PIXELS = 16_777_216  # Qwen3-VL preprocessor_config.json size.longest_edge
PIXELS_PER_VISUAL_TOKEN = 32 * 32  # patch 16, merged 2x2
# Videos: one visual token per 2 frames (the temporal patch) x 32 x 32 pixels, so a video's pixel budget
# (frames x height x width) buys budget / 2048 tokens. Qwen3VLVideoProcessor's default budget, and vLLM
# 0.32's Qwen3-VL loader defaults (2 frames per second, at most 768 frames).
PIXELS_PER_VIDEO_TOKEN = 2 * PIXELS_PER_VISUAL_TOKEN
QWEN_DEFAULT_VIDEO_MAX_PIXELS = 32 * 32 * 768
VLLM_DEFAULT_VIDEO_FPS = 2.0
VLLM_DEFAULT_VIDEO_MAX_FRAMES = 768


class ProfileSettings(BaseModel):
    """The vLLM options this project reads. Field names are vLLM's CLI options with dashes."""

    model_config = ConfigDict(
        alias_generator=lambda name: name.replace("_", "-"), populate_by_name=True, extra="allow", frozen=True
    )

    model: str = Field(description="Hugging Face id or local path of the checkpoint.")
    served_model_name: str | list[str] = Field(
        description="Name(s) clients use as `model`; the first is what responses report."
    )
    port: int = Field(ge=1, le=65535, description="Port vLLM listens on (container and bare metal).")
    gpu_memory_utilization: float | None = Field(
        None,
        description="Fraction of the WHOLE GPU this instance may use, in (0, 1]; unset: the placement decides.",
    )
    max_model_len: int = Field(description="Longest prompt + answer in tokens; sizes the KV cache.")
    limit_mm_per_prompt: dict[str, int] = Field(
        description="Most items per request by modality; video must be set (0 when serving images only)."
    )
    quantization: QuantizationMethod | None = Field(None, description="Weight quantization method, if any.")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs one instance is split across.")
    dtype: str = Field("auto", description="Weight dtype; 'auto' takes the checkpoint's.")
    kv_cache_dtype: str = Field("auto", description="KV cache dtype; 'fp8' halves it.")
    kv_cache_memory_bytes: int | None = Field(
        None, description="Fixed KV cache size; when set vLLM ignores gpu-memory-utilization for the cache."
    )
    reasoning_parser: str | None = Field(
        None, description="Splits reasoning out of answers (Thinking models)."
    )

    @field_validator("served_model_name")
    @classmethod
    def _names_not_empty(cls, value: str | list[str]) -> str | list[str]:
        if not value or (isinstance(value, list) and not all(value)):
            raise ValueError("give at least one non-empty name, e.g. served-model-name: qwen3-vl-8b")
        return value

    @field_validator("gpu_memory_utilization")
    @classmethod
    def _fraction(cls, value: float | None) -> float | None:
        if value is not None and not 0 < value <= 1:
            raise ValueError(f"{value} is outside (0, 1]; it is a fraction of the whole GPU, e.g. 0.9")
        return value

    @field_validator("max_model_len", "kv_cache_memory_bytes", mode="before")
    @classmethod
    def _human_int(cls, value: Any) -> Any:
        return None if value is None else parse_human_int(value)

    @field_validator("max_model_len")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError(f"{value} is not a positive number of tokens, e.g. 32768")
        return value

    @field_validator("limit_mm_per_prompt")
    @classmethod
    def _limits(cls, value: dict[str, int]) -> dict[str, int]:
        unknown = sorted(set(value) - set(MODALITIES))
        if unknown:
            raise ValueError(f"unknown modality {', '.join(unknown)}; valid: {', '.join(MODALITIES)}")
        if "video" not in value:
            raise ValueError(
                "set video explicitly (video: 0 when serving images): its default of 999 makes vLLM "
                "reserve memory for dummy videos at start-up"
            )
        if any(count < 0 for count in value.values()):
            raise ValueError("limits are counts: 0 or more")
        return value

    def _processor_max_pixels(self, scope: str) -> int | None:
        """size.longest_edge for one modality: under `images_kwargs` / `videos_kwargs` (which win), else
        the top-level `size`, which vLLM applies to images and videos alike."""
        kwargs = (self.model_extra or {}).get("mm-processor-kwargs") or {}
        if not isinstance(kwargs, dict):
            return None
        for holder in (kwargs.get(scope), kwargs):
            size = holder.get("size") if isinstance(holder, dict) else None
            longest = size.get("longest_edge") if isinstance(size, dict) else None
            if isinstance(longest, int) and longest > 0:
                return longest
        return None

    @property
    def image_max_tokens(self) -> int:
        """Most visual tokens vLLM spends on one image: mm-processor-kwargs size.longest_edge / (32 x 32)
        pixels, else the processor's default of 16,777,216 pixels."""
        pixels = self._processor_max_pixels("images_kwargs") or QWEN_DEFAULT_MAX_PIXELS
        return pixels // PIXELS_PER_VISUAL_TOKEN

    @property
    def video_max_tokens(self) -> int:
        """Most visual tokens vLLM spends on one video: its pixel budget (frames x height x width) / 2048."""
        pixels = self._processor_max_pixels("videos_kwargs") or QWEN_DEFAULT_VIDEO_MAX_PIXELS
        return pixels // PIXELS_PER_VIDEO_TOKEN

    def _video_io(self, key: str) -> Any:
        io = (self.model_extra or {}).get("media-io-kwargs") or {}
        video = io.get("video") if isinstance(io, dict) else None
        return video.get(key) if isinstance(video, dict) else None

    @property
    def video_fps(self) -> float:
        """Frames per second vLLM's Qwen3-VL loader samples (media-io-kwargs video.fps)."""
        fps = self._video_io("fps")
        return float(fps) if isinstance(fps, int | float) and fps > 0 else VLLM_DEFAULT_VIDEO_FPS

    @property
    def video_max_frames(self) -> int:
        """Most frames it samples from one video (media-io-kwargs video.max_frames)."""
        frames = self._video_io("max_frames")
        return frames if isinstance(frames, int) and frames > 0 else VLLM_DEFAULT_VIDEO_MAX_FRAMES

    @property
    def video_limit(self) -> int:
        """Videos vLLM takes per request, the history included."""
        return self.limit_mm_per_prompt.get("video", VLLM_DEFAULT_MM_LIMIT)

    @property
    def image_limit(self) -> int:
        """Images vLLM takes per request, the history included (its default is 999)."""
        return self.limit_mm_per_prompt.get("image", VLLM_DEFAULT_MM_LIMIT)

    @property
    def served_name(self) -> str:
        """The name responses report (vLLM uses the first of several)."""
        names = self.served_model_name
        return names if isinstance(names, str) else names[0]

    @property
    def served_names(self) -> list[str]:
        names = self.served_model_name
        return [names] if isinstance(names, str) else list(names)


class ProfileError(ValueError):
    """A profile that cannot be used. The message names the file, the key, what is wrong and what to do."""


@dataclass(frozen=True)
class Profile:
    """A profile file with its environment overrides applied."""

    name: str
    path: Path
    settings: ProfileSettings
    overrides: ProfileOverrides

    @property
    def family(self) -> str:
        """Variants share a family (8b, 8b-fp8, 8b-thinking -> 8b): the prefix of their override variables."""
        return family_of(self.name)

    def override_args(self) -> list[str]:
        """vLLM CLI flags for the overrides; CLI flags win over the config file in vLLM."""
        return self.overrides.as_cli_args()

    @property
    def gpu_pin(self) -> int | None:
        """The GPU index SERVE_<FAMILY>_GPU chose by hand (validated when the profile is loaded)."""
        return None if self.overrides.gpu is None else int(self.overrides.gpu)

    @property
    def explicit_share(self) -> tuple[float, str] | None:
        """A gpu-memory-utilization the user chose, and where: the variable, else this file. None: the
        placement sizes it (the shipped profiles leave it out)."""
        share = self.settings.gpu_memory_utilization
        if share is None:
            return None
        return share, self.overrides.variable_names().get("gpu-memory-utilization", str(self.path))

    @property
    def explicit_max_model_len(self) -> tuple[int, str] | None:
        """A max-model-len the user insists on (its variable); the profile's own value is only the target."""
        variable = self.overrides.variable_names().get("max-model-len")
        return None if variable is None else (self.settings.max_model_len, variable)


def family_of(profile_name: str) -> str:
    return profile_name.split("-", 1)[0]


def _normalise_keys(raw: dict[str, Any], where: str) -> dict[str, Any]:
    """vLLM accepts `max_model_len` and `max-model-len`; we read both, and refuse null values and duplicates."""
    out: dict[str, Any] = {}
    for key, value in raw.items():
        dashed = str(key).replace("_", "-")
        if dashed in out:
            raise ProfileError(f"{where}: key {dashed!r} is given twice (once with underscores); keep one")
        if value is None:
            raise ProfileError(
                f"{where}: key {dashed!r} has no value (vLLM would receive the string 'None'); "
                "remove the line to use vLLM's default"
            )
        out[dashed] = value
    return out


def _describe(error: ValidationError, where: str, env_names: Mapping[str, str]) -> str:
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "(file)"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "is required; every profile must set it"
        elif item["type"] == "literal_error":
            message = f"unknown method {item['input']!r}; valid: {', '.join(QUANTIZATION_METHODS)}"
        hint = f" (set by {env_names[key]})" if key in env_names else ""
        lines.append(f"{where}: {key}{hint}: {message}")
    return "\n".join(lines)


def read_profile_file(path: Path) -> dict[str, Any]:
    """The YAML mapping in a profile file, or a ProfileError saying what is wrong with the file."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ProfileError(f"{path}: no such profile file") from exc
    except IsADirectoryError as exc:
        raise ProfileError(f"{path}: is a folder, not a profile file (give profiles/NAME.yaml)") from exc
    except UnicodeDecodeError as exc:
        raise ProfileError(f"{path}: not a text file (a profile is YAML in UTF-8)") from exc
    except OSError as exc:
        raise ProfileError(f"{path}: cannot be read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ProfileError(
            f"{path}: YAML syntax error{at}: {problem}; fix the file's indentation/quoting"
        ) from exc
    if not isinstance(raw, dict):
        raise ProfileError(
            f"{path}: expected a mapping of vLLM options (key: value), got {type(raw).__name__}"
        )
    return _normalise_keys(raw, str(path))


def load_profile(
    path: Path, environ: Mapping[str, str] | None = None, *, env_file: Path | None = None
) -> Profile:
    """Read, apply the family's SERVE_<FAMILY>_* overrides, and validate one profile file."""
    path = Path(path)
    name = path.stem
    raw = read_profile_file(path)
    overrides = ProfileOverrides.for_family(family_of(name), environ, env_file=env_file)
    merged = {**raw, **overrides.as_profile_keys()}
    try:
        settings = ProfileSettings.model_validate(merged)
    except ValidationError as exc:
        raise ProfileError(_describe(exc, str(path), overrides.variable_names())) from exc
    if overrides.gpu is not None and not overrides.gpu.isdigit():
        raise ProfileError(
            f"{overrides.gpu_variable}={overrides.gpu!r} is not a GPU index; give a number such as 0 or 1 "
            "(nvidia-smi lists them), or leave it empty to let the placement choose"
        )
    return Profile(name=name, path=path, settings=settings, overrides=overrides)


def default_profiles_dir() -> Path:
    """SERVE_PROFILES_DIR, else ./profiles, else the profiles/ folder beside this package (a source checkout)."""
    if configured := os.environ.get("SERVE_PROFILES_DIR"):
        return Path(configured)
    here = Path.cwd() / "profiles"
    # serve/config/profile.py -> the checkout root, beside serve/.
    return here if here.is_dir() else Path(__file__).resolve().parents[2] / "profiles"


def resolve_profile_path(name_or_file: str, profiles_dir: Path | None = None) -> Path:
    """`8b` -> profiles/8b.yaml; anything with a suffix or a slash is a file path."""
    candidate = Path(name_or_file)
    if candidate.suffix in (".yaml", ".yml") or os.sep in name_or_file:
        return candidate
    directory = profiles_dir or default_profiles_dir()
    path = directory / f"{name_or_file}.yaml"
    if not path.is_file():
        available = ", ".join(sorted(p.stem for p in directory.glob("*.yaml"))) or "none"
        raise ProfileError(
            f"unknown profile {name_or_file!r}: no {path}; available in {directory}: {available}"
        )
    return path


def profile_paths(profiles_dir: Path) -> list[Path]:
    return sorted(profiles_dir.glob("*.yaml"))


def profile_summary(path: Path) -> str:
    """The profile's first comment line: one sentence on what it is and what it is for."""
    try:
        first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    except (OSError, UnicodeDecodeError):
        return ""
    return first.removeprefix("#").strip() if first.startswith("#") else ""
