"""Separate a thinking model's reasoning from its answer when it arrives inside the content.

With `--reasoning-parser qwen3` vLLM sends reasoning in its own delta field and this is a no-op. Without
it, Qwen3 Thinking models write `<think>...</think>` into the content; their chat template often opens
`<think>` in the prompt already, so the output may hold only the closing tag.
"""

from __future__ import annotations

from typing import NamedTuple

OPEN_TAG = "<think>"
CLOSE_TAG = "</think>"


class SplitText(NamedTuple):
    reasoning: str
    content: str


def split_reasoning(text: str) -> SplitText:
    """Reasoning and answer of the content received so far (call it again as more arrives)."""
    if OPEN_TAG in text:
        before, _, rest = text.partition(OPEN_TAG)
        reasoning, closed, after = rest.partition(CLOSE_TAG)
        return SplitText(reasoning.strip(), (before + after).strip() if closed else before.strip())
    if CLOSE_TAG in text:
        reasoning, _, after = text.partition(CLOSE_TAG)
        return SplitText(reasoning.strip(), after.strip())
    return SplitText("", _without_partial_tag(text))


def _without_partial_tag(text: str) -> str:
    """Hide a tag that is still arriving ('<thi') so it never flashes on the page."""
    for tag in (OPEN_TAG, CLOSE_TAG):
        for length in range(len(tag) - 1, 0, -1):
            if text.endswith(tag[:length]):
                return text[:-length]
    return text
