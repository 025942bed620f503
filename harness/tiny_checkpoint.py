"""A tiny, randomly initialised Qwen3-VL checkpoint that a real vLLM can serve on a CPU, fully offline.

Why: the integration tests need the real serving path (Qwen chat template, Qwen3-VL image processor,
visual tokens counted in usage, vLLM's own validation errors) without a GPU, a model download or a
16 GiB checkpoint. The architecture is the real `Qwen3VLForConditionalGeneration`, only tiny (~1.3 M
parameters), so answers are random text while everything around them behaves like production.

Heavy imports (torch, transformers, tokenizers) happen only inside the build, so a test fixture can
import `harness_env` and `write_tiny_profile` cheaply.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import sysconfig
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

HARNESS_DIR = Path(__file__).resolve().parent
# On the server's PYTHONPATH: its sitecustomize.py lets vLLM's Qwen-VL code import without torchvision.
PYTHONPATH_DIR = HARNESS_DIR / "pythonpath"
VIDEO_PROCESSOR_SOURCE = HARNESS_DIR / "tiny_video_processor.py"
# Files whose content decides what a checkpoint looks like; editing one invalidates the cache.
BUILDER_SOURCES = (Path(__file__).resolve(), VIDEO_PROCESSOR_SOURCE)

SERVED_NAME = "tiny-qwen3-vl"
MAX_MODEL_LEN = 2048
IMAGE_LIMIT = 2
VIDEO_LIMIT = 1
DEFAULT_IMAGE_MAX_PIXELS = 256 * 256
# The suite's video budget: vLLM's Qwen3-VL loader samples VIDEO_FPS frames per second (the profiles'
# rate), at most VIDEO_MAX_FRAMES (fewer than the profiles' 32, so requests stay quick), and the processor
# fits frames x height x width into VIDEO_MAX_PIXELS (one visual token per 2 frames x 32 x 32 pixels),
# small so that vLLM's start-up profiling of the largest video stays cheap.
VIDEO_FPS = 2
VIDEO_MAX_FRAMES = 8
VIDEO_MAX_TOKENS = 512
VIDEO_MAX_PIXELS = VIDEO_MAX_TOKENS * 2 * 32 * 32
VIDEO_SIZE = {"longest_edge": VIDEO_MAX_PIXELS, "shortest_edge": 4 * 32 * 32}
# float32 beats bfloat16 on AVX2-only CPUs (vLLM falls back from oneDNN for bf16 linear layers).
DTYPE = "float32"

# Vision geometry: a 16-pixel patch, merged 2x2 -> one visual token per 32x32 pixels after smart_resize.
PATCH_SIZE = 16
MERGE_SIZE = 2
TEMPORAL_PATCH_SIZE = 2
PIXELS_PER_TOKEN_SIDE = PATCH_SIZE * MERGE_SIZE
IMAGE_MIN_PIXELS = PIXELS_PER_TOKEN_SIDE * PIXELS_PER_TOKEN_SIDE

BPE_VOCAB_SIZE = 2000
# Qwen's special tokens; they get ids right after the BPE vocabulary, in this order.
SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|object_ref_start|>",
    "<|object_ref_end|>",
    "<|box_start|>",
    "<|box_end|>",
    "<|quad_start|>",
    "<|quad_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

# Qwen-style ChatML. vLLM sees the loop over message['content'] and therefore passes OpenAI-style parts
# ({"type": "image"} / {"type": "text", "text": ...}); each image becomes one <|image_pad|> that the
# processor expands to the image's visual tokens; each video one <|video_pad|>, expanded to its frames'
# timestamps and visual tokens.
CHAT_TEMPLATE = r"""
{%- set default_system_prompt = 'You are a helpful assistant.' -%}
{%- for message in messages -%}
    {%- if loop.first and message['role'] != 'system' -%}
        {{- '<|im_start|>system\n' ~ default_system_prompt ~ '<|im_end|>\n' -}}
    {%- endif -%}
    {{- '<|im_start|>' ~ message['role'] ~ '\n' -}}
    {%- if message['content'] is string -%}
        {{- message['content'] -}}
    {%- elif message['content'] -%}
        {%- for part in message['content'] -%}
            {%- if part['type'] in ('image', 'image_url') or 'image' in part or 'image_url' in part -%}
                {{- '<|vision_start|><|image_pad|><|vision_end|>' -}}
            {%- elif part['type'] in ('video', 'video_url') or 'video' in part or 'video_url' in part -%}
                {{- '<|vision_start|><|video_pad|><|vision_end|>' -}}
            {%- elif 'text' in part -%}
                {{- part['text'] -}}
            {%- endif -%}
        {%- endfor -%}
    {%- endif -%}
    {{- '<|im_end|>\n' -}}
{%- endfor -%}
{%- if add_generation_prompt -%}
    {{- '<|im_start|>assistant\n' -}}
{%- endif -%}
""".strip()


def build_tiny_checkpoint(out_dir: Path, *, image_max_pixels: int = DEFAULT_IMAGE_MAX_PIXELS) -> None:
    """Write a complete tiny checkpoint (weights, tokenizer, processor configs) into `out_dir`."""
    _default_to_offline()
    out_dir.mkdir(parents=True, exist_ok=True)
    tokenizer = _build_tokenizer()
    tokenizer.save_pretrained(out_dir)
    _update_json(out_dir / "tokenizer_config.json", processor_class="Qwen3VLProcessor")
    token_ids = {token: tokenizer.convert_tokens_to_ids(token) for token in SPECIAL_TOKENS}
    _save_random_model(out_dir, token_ids, vocab_size=len(tokenizer))
    _write_json(
        out_dir / "generation_config.json",
        {
            "eos_token_id": [token_ids["<|im_end|>"], token_ids["<|endoftext|>"]],
            "pad_token_id": token_ids["<|endoftext|>"],
            "do_sample": False,
        },
    )
    _write_processor_configs(out_dir, image_max_pixels=image_max_pixels)


def ensure_tiny_checkpoint(
    *, image_max_pixels: int = DEFAULT_IMAGE_MAX_PIXELS, cache_root: Path | None = None
) -> Path:
    """Return a cached tiny checkpoint, building it first if needed.

    The folder name carries a hash of the builder sources, the transformers version and the image size
    limit, so any change rebuilds. The build goes to a temporary folder beside the target and is renamed
    into place, so a crash never leaves a half-written checkpoint; if another process wins the race, its
    finished folder is used.
    """
    root = cache_root if cache_root is not None else default_cache_root()
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"tiny-qwen3-vl-{checkpoint_key(image_max_pixels)}"
    if target.is_dir():
        return target
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.building-", dir=root))
    try:
        build_tiny_checkpoint(staging, image_max_pixels=image_max_pixels)
        staging.chmod(0o755)
        _publish(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def default_cache_root() -> Path:
    """Where checkpoints are cached between runs: $QWEN_STACK_TEST_CACHE, else ~/.cache/qwen3-vl-stack."""
    configured = os.environ.get("QWEN_STACK_TEST_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "qwen3-vl-stack"


def checkpoint_key(image_max_pixels: int) -> str:
    """A short hash of everything that determines the checkpoint's content."""
    digest = hashlib.sha256()
    for source in BUILDER_SOURCES:
        digest.update(source.read_bytes())
    digest.update(f"transformers={importlib.metadata.version('transformers')}".encode())
    digest.update(f"image_max_pixels={image_max_pixels}".encode())
    return digest.hexdigest()[:16]


def harness_env(*, cache_dir: Path) -> dict[str, str]:
    """Environment additions for a vLLM process serving the tiny checkpoint.

    PYTHONPATH carries the torchvision import shim (inherited by vLLM's worker processes); the offline
    flags make any accidental hub access fail fast; per-run HF_HOME and VLLM_CACHE_ROOT keep runs from
    sharing state (e.g. the copy of the checkpoint's remote-code video processor).
    """
    existing = os.environ.get("PYTHONPATH")
    pythonpath = [str(PYTHONPATH_DIR), existing] if existing else [str(PYTHONPATH_DIR)]
    vllm_cache = cache_dir / "vllm-cache"
    _share_model_inspection_cache(vllm_cache)
    return {
        "PYTHONPATH": os.pathsep.join(pythonpath),
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HOME": str(cache_dir / "hf-home"),
        "VLLM_CACHE_ROOT": str(vllm_cache),
        # The engine core runs its model executor in-process instead of in a third Python process: every
        # process re-imports torch + vLLM (~20 s on these 2-core machines), so a start takes ~25 s less.
        "VLLM_ENABLE_V1_MULTIPROCESSING": "0",
    }


def _share_model_inspection_cache(vllm_cache: Path) -> None:
    """Point the run's `modelinfos` at one shared folder.

    vLLM inspects a model class in a separate Python process (~20 s here) unless VLLM_CACHE_ROOT/modelinfos
    holds the result, keyed by the model module's hash; sharing only that folder keeps runs apart otherwise.
    """
    shared = default_cache_root() / "vllm-modelinfos"
    shared.mkdir(parents=True, exist_ok=True)
    vllm_cache.mkdir(parents=True, exist_ok=True)
    link = vllm_cache / "modelinfos"
    if not link.exists() and not link.is_symlink():
        link.symlink_to(shared, target_is_directory=True)


def tiny_profile(
    *, checkpoint: Path, served_name: str = SERVED_NAME, port: int, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The vLLM options (CLI names) for serving the tiny checkpoint on a CPU; `extra` overrides."""
    profile: dict[str, Any] = {
        "model": str(checkpoint),
        "served-model-name": served_name,
        "port": port,
        "max-model-len": MAX_MODEL_LEN,
        "limit-mm-per-prompt": {"image": IMAGE_LIMIT, "video": VIDEO_LIMIT},
        # The production profiles' layout: the frame budget for vLLM's Qwen3-VL video loader and the video
        # pixel budget under videos_kwargs (images keep the checkpoint's own cap, the `image_max_pixels`
        # knob of the image-budget tests).
        "media-io-kwargs": {"video": {"fps": VIDEO_FPS, "max_frames": VIDEO_MAX_FRAMES}},
        "mm-processor-kwargs": {"videos_kwargs": {"size": VIDEO_SIZE}},
        # Loads the checkpoint's torchvision-free video processor (auto_map).
        "trust-remote-code": True,
        # torch.compile adds ~40 s to every start and its cache does not survive restarts on CPU.
        "enforce-eager": True,
        # Without an explicit size vLLM CPU sizes the KV cache from NUMA node memory and refuses to start.
        "kv-cache-memory-bytes": "64M",
        "dtype": DTYPE,
        # Same stance as the production profiles: no server-side fetching of http(s) image URLs.
        "allowed-media-domains": ["none.invalid"],
    }
    profile.update(extra or {})
    return profile


def write_tiny_profile(
    path: Path,
    *,
    checkpoint: Path,
    served_name: str = SERVED_NAME,
    port: int,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write the tiny server's vLLM config file (read by `--config`); host and API key stay outside it."""
    profile = tiny_profile(checkpoint=checkpoint, served_name=served_name, port=port, extra=extra)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "# Tiny random Qwen3-VL for tests, written by harness/tiny_checkpoint.py.\n"
    path.write_text(header + yaml.safe_dump(profile, sort_keys=False))
    return path


def _default_to_offline() -> None:
    """The build never needs the hub; make sure nothing tries."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def _publish(staging: Path, target: Path) -> None:
    """Atomically move a finished build into place, or accept the folder a concurrent build published."""
    try:
        os.replace(staging, target)
    except OSError:
        if not target.is_dir():
            raise


def _build_tokenizer() -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on the local stdlib sources, plus Qwen's special tokens and chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    corpus = sorted(str(path) for path in Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=BPE_VOCAB_SIZE,
        min_frequency=2,
        show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train(corpus, trainer)
    bpe.add_special_tokens(list(SPECIAL_TOKENS))
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        bos_token=None,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        model_max_length=32768,
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


def _save_random_model(out_dir: Path, token_ids: dict[str, int], *, vocab_size: int) -> None:
    """Instantiate the real architecture with tiny sizes and seeded random weights, and save it."""
    import torch
    from transformers import Qwen3VLConfig, Qwen3VLForConditionalGeneration

    eos_id, pad_id = token_ids["<|im_end|>"], token_ids["<|endoftext|>"]
    text_config = {
        "vocab_size": vocab_size,
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 32,  # vLLM's CPU attention supports only some head sizes (32, 64, 80, ...)
        # Room for a full-size 12 MP photo (~11,800 visual tokens) in the image-budget benchmark.
        "max_position_embeddings": 32768,
        "rms_norm_eps": 1e-6,
        "eos_token_id": eos_id,
        "pad_token_id": pad_id,
        "dtype": DTYPE,
        "rope_parameters": {
            "rope_type": "default",
            "rope_theta": 5_000_000.0,
            "mrope_section": [6, 5, 5],  # must sum to head_dim / 2
            "mrope_interleaved": True,
        },
    }
    vision_config = {
        "depth": 2,
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_heads": 2,
        "patch_size": PATCH_SIZE,
        "spatial_merge_size": MERGE_SIZE,
        "temporal_patch_size": TEMPORAL_PATCH_SIZE,
        "out_hidden_size": 128,  # = text hidden size
        "num_position_embeddings": 576,  # must be a perfect square
        "deepstack_visual_indexes": [0, 1],  # below depth, and no more than the text layers
    }
    config = Qwen3VLConfig(
        text_config=text_config,
        vision_config=vision_config,
        image_token_id=token_ids["<|image_pad|>"],
        video_token_id=token_ids["<|video_pad|>"],
        vision_start_token_id=token_ids["<|vision_start|>"],
        vision_end_token_id=token_ids["<|vision_end|>"],
        tie_word_embeddings=False,
    )
    config.architectures = ["Qwen3VLForConditionalGeneration"]
    config.eos_token_id, config.pad_token_id, config.dtype = eos_id, pad_id, DTYPE
    with torch.random.fork_rng():  # seeded weights without disturbing the caller's RNG
        torch.manual_seed(0)
        model = Qwen3VLForConditionalGeneration(config).to(getattr(torch, DTYPE)).eval()
    model.save_pretrained(out_dir)


def _write_processor_configs(out_dir: Path, *, image_max_pixels: int) -> None:
    """Image, video and processor configs; the video processor is our torchvision-free remote code."""
    common = {
        "processor_class": "Qwen3VLProcessor",
        "do_resize": True,
        "do_rescale": True,
        "rescale_factor": 1 / 255,
        "do_normalize": True,
        "image_mean": [0.5, 0.5, 0.5],
        "image_std": [0.5, 0.5, 0.5],
        "do_convert_rgb": True,
        "resample": 3,  # bicubic
        "patch_size": PATCH_SIZE,
        "temporal_patch_size": TEMPORAL_PATCH_SIZE,
        "merge_size": MERGE_SIZE,
    }
    _write_json(
        out_dir / "preprocessor_config.json",
        {
            **common,
            "image_processor_type": "Qwen2VLImageProcessor",
            "size": {"shortest_edge": IMAGE_MIN_PIXELS, "longest_edge": image_max_pixels},
        },
    )
    shutil.copy(VIDEO_PROCESSOR_SOURCE, out_dir / VIDEO_PROCESSOR_SOURCE.name)
    _write_json(
        out_dir / "video_preprocessor_config.json",
        {
            **common,
            "auto_map": {"AutoVideoProcessor": "tiny_video_processor.TinyQwen3VLVideoProcessor"},
            # What the real checkpoints name: vLLM picks its Qwen3-VL video loader (fps, max_frames) by it,
            # else a generic OpenCV loader that ignores max_frames.
            "video_processor_type": "Qwen3VLVideoProcessor",
            "size": VIDEO_SIZE,
            # Qwen3VLVideoProcessor's own defaults (the real checkpoints' file carries the same).
            "fps": 2,
            "min_frames": 4,
            "max_frames": 768,
            "do_sample_frames": True,
        },
    )
    _write_json(out_dir / "processor_config.json", {"processor_class": "Qwen3VLProcessor"})


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2) + "\n")


def _update_json(path: Path, **changes: Any) -> None:
    _write_json(path, {**json.loads(path.read_text()), **changes})
