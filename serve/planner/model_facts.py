"""Architecture facts the planner needs, for the known Qwen3-VL checkpoints or from a local config.json.

Parameter counts are computed from the architecture rather than stored, so a local checkpoint (the tiny
test model, a fine-tune) is planned by the same arithmetic as the published ones.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

DType = Literal["bfloat16", "float16", "float32"]
DTYPE_BYTES: dict[str, int] = {"bfloat16": 2, "float16": 2, "half": 2, "float32": 4, "float": 4}


class TextFacts(BaseModel):
    """The language model part of config.json (`text_config`)."""

    hidden_size: int = Field(description="Width of the residual stream.")
    num_hidden_layers: int = Field(description="Decoder layers; each holds its own KV cache.")
    num_attention_heads: int = Field(description="Query heads.")
    num_key_value_heads: int = Field(description="KV heads (grouped-query attention).")
    head_dim: int = Field(description="Width of one attention head.")
    intermediate_size: int = Field(description="Width of the MLP.")
    vocab_size: int = Field(description="Rows of the embedding and of the LM head.")
    max_position_embeddings: int = Field(description="The longest context the checkpoint supports.")


class VisionFacts(BaseModel):
    """The vision encoder part of config.json (`vision_config`)."""

    depth: int = Field(description="ViT blocks.")
    hidden_size: int = Field(description="ViT width.")
    intermediate_size: int = Field(description="ViT MLP width.")
    patch_size: int = Field(16, description="Pixels per patch side.")
    temporal_patch_size: int = Field(2, description="Frames per patch.")
    spatial_merge_size: int = Field(2, description="Patches merged per visual token side.")
    num_position_embeddings: int = Field(2304, description="Learned position embeddings.")
    deepstack_visual_indexes: list[int] = Field(default_factory=list, description="Extra merger taps.")


class ModelFacts(BaseModel):
    """Everything `serve plan` needs to know about one checkpoint."""

    text: TextFacts
    vision: VisionFacts
    tie_word_embeddings: bool = Field(description="True when the LM head shares the embedding weights.")
    dtype: DType = Field("bfloat16", description="Dtype the weights are stored in.")
    checkpoint_quantization: str | None = Field(
        None, description="Quantization baked into the checkpoint (e.g. 'fp8' for Qwen's -FP8 ones)."
    )
    source: str = Field(description="Where the facts came from: the built-in table or a config.json path.")

    @property
    def decoder_linear_params(self) -> int:
        """Weights of the decoder's linear layers: the part weight quantization shrinks."""
        t = self.text
        q_and_o = 2 * t.hidden_size * t.num_attention_heads * t.head_dim
        k_and_v = 2 * t.hidden_size * t.num_key_value_heads * t.head_dim
        mlp = 3 * t.hidden_size * t.intermediate_size
        return t.num_hidden_layers * (q_and_o + k_and_v + mlp)

    @property
    def embedding_params(self) -> int:
        """Token embedding plus the LM head when it is not tied to it."""
        rows = self.text.vocab_size * self.text.hidden_size
        return rows if self.tie_word_embeddings else 2 * rows

    @property
    def vision_params(self) -> int:
        """ViT blocks, patch and position embeddings, and the patch mergers (main + deepstack)."""
        v = self.vision
        blocks = v.depth * (4 * v.hidden_size**2 + 2 * v.hidden_size * v.intermediate_size)
        patch_embed = 3 * v.temporal_patch_size * v.patch_size**2 * v.hidden_size
        positions = v.num_position_embeddings * v.hidden_size
        merged = v.hidden_size * v.spatial_merge_size**2
        merger = merged * merged + merged * self.text.hidden_size
        return blocks + patch_embed + positions + merger * (1 + len(v.deepstack_visual_indexes))

    @property
    def total_params(self) -> int:
        """All parameters (norms and biases, well under 0.1%, are left out)."""
        return self.decoder_linear_params + self.embedding_params + self.vision_params

    @property
    def max_context(self) -> int:
        return self.text.max_position_embeddings


_TEXT_8B = TextFacts(
    hidden_size=4096,
    num_hidden_layers=36,
    num_attention_heads=32,
    num_key_value_heads=8,
    head_dim=128,
    intermediate_size=12288,
    vocab_size=151936,
    max_position_embeddings=262144,
)
_VISION_8B = VisionFacts(
    depth=27, hidden_size=1152, intermediate_size=4304, deepstack_visual_indexes=[8, 16, 24]
)
_TEXT_4B = _TEXT_8B.model_copy(update={"hidden_size": 2560, "intermediate_size": 9728})
_VISION_4B = VisionFacts(
    depth=24, hidden_size=1024, intermediate_size=4096, deepstack_visual_indexes=[5, 11, 17]
)


def _known(size: str, *, quantization: str | None) -> ModelFacts:
    text, vision, tied = (_TEXT_8B, _VISION_8B, False) if size == "8B" else (_TEXT_4B, _VISION_4B, True)
    return ModelFacts(
        text=text,
        vision=vision,
        tie_word_embeddings=tied,
        checkpoint_quantization=quantization,
        source="built-in table (Qwen's config.json)",
    )


KNOWN_MODELS: dict[str, ModelFacts] = {
    f"Qwen/Qwen3-VL-{size}-{kind}{suffix}": _known(size, quantization="fp8" if suffix else None)
    for size in ("8B", "4B")
    for kind in ("Instruct", "Thinking")
    for suffix in ("", "-FP8")
}


class UnknownModelError(LookupError):
    """The model is neither in the built-in table nor a local directory with a config.json."""


def _parse_config(config: dict, source: str) -> ModelFacts:
    text = config.get("text_config", config)
    dtype = str(text.get("dtype") or text.get("torch_dtype") or config.get("dtype") or "bfloat16")
    quant = (config.get("quantization_config") or {}).get("quant_method")
    return ModelFacts(
        text=TextFacts.model_validate(
            {**text, "head_dim": text.get("head_dim") or text["hidden_size"] // text["num_attention_heads"]}
        ),
        vision=VisionFacts.model_validate(config["vision_config"]),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", text.get("tie_word_embeddings", False))),
        dtype=dtype if dtype in ("bfloat16", "float16", "float32") else "bfloat16",
        checkpoint_quantization=quant,
        source=source,
    )


def model_facts(model: str) -> ModelFacts:
    """Facts for a Hugging Face id from the table, or for a local checkpoint directory."""
    if model in KNOWN_MODELS:
        return KNOWN_MODELS[model]
    config_path = Path(model).expanduser() / "config.json"
    if config_path.is_file():
        try:
            return _parse_config(json.loads(config_path.read_text()), str(config_path))
        except (KeyError, ValueError) as exc:
            raise UnknownModelError(f"{config_path} is not a Qwen3-VL config.json: {exc}") from exc
    known = ", ".join(sorted(KNOWN_MODELS))
    raise UnknownModelError(
        f"model {model!r} is not in the built-in table ({known}) and is not a local directory "
        "with a config.json"
    )
