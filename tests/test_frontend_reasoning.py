"""Reasoning split out of streamed content (thinking models without vLLM's reasoning parser)."""

from __future__ import annotations

import pytest

from frontend.reasoning import split_reasoning


@pytest.mark.parametrize(
    ("text", "reasoning", "content"),
    [
        ("Just an answer.", "", "Just an answer."),
        ("<think>Look at the cat.</think>It is a cat.", "Look at the cat.", "It is a cat."),
        # Qwen3 Thinking templates open <think> in the prompt: only the closing tag is generated.
        ("First the ears.\n</think>\n\nA cat.", "First the ears.", "A cat."),
        # Still thinking: everything so far is reasoning, nothing is shown as the answer yet.
        ("<think>Counting the legs", "Counting the legs", ""),
        ("Intro <think>hidden</think> outro", "hidden", "Intro  outro"),
    ],
)
def test_split(text: str, reasoning: str, content: str) -> None:
    assert split_reasoning(text) == (reasoning, content)


@pytest.mark.parametrize("partial", ["<", "<th", "<think", "</thi"])
def test_a_tag_still_arriving_never_shows(partial: str) -> None:
    assert split_reasoning("The answer " + partial).content == "The answer "


def test_streaming_prefixes_converge_on_the_final_split() -> None:
    text = "<think>a b c</think>The answer."
    splits = [split_reasoning(text[:end]) for end in range(len(text) + 1)]
    assert splits[-1] == ("a b c", "The answer.")
    assert all("<" not in split.content for split in splits)


@pytest.mark.parametrize("field", ["reasoning", "reasoning_content"])
def test_reasoning_deltas_survive_the_openai_sdk(field: str) -> None:
    """vLLM's reasoning parser sends `reasoning` (0.11+) or `reasoning_content` (older), outside OpenAI's schema."""
    from openai.types.chat import ChatCompletionChunk

    from frontend.answer_stream import delta_reasoning

    chunk = ChatCompletionChunk.model_validate(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": "qwen3-vl-8b-thinking",
            "choices": [{"index": 0, "delta": {field: "Counting the legs."}, "finish_reason": None}],
        }
    )
    assert delta_reasoning(chunk.choices[0].delta) == "Counting the legs."
