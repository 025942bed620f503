r"""Answer text for st.markdown: `\(...\)` and `\[...\]` become Streamlit's `$` math, code stays as written."""

from __future__ import annotations

import re

import pytest

from frontend.markdown import IMAGE_SIGN, closing_fence, plain_text, to_streamlit_markdown

# How Streamlit 1.67's frontend decides that a text holds math (StreamlitMarkdown.*.js): a `$$...$$`, or a
# one-line `$...$` that neither starts nor ends with a space and whose closing `$` is not followed by a digit.
STREAMLIT_DISPLAY_MATH = re.compile(r"(?<!\$)\$\$+(?!\$)[\s\S]*?\$\$")
STREAMLIT_INLINE_MATH = re.compile(r"(?<!\$)\$(?![\s$])[^$\n]*?[^\s$]\$(?!\d)")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"The area is \( \pi r^2 \).", r"The area is $\pi r^2$."),
        (r"\(a\) and \(b_1\)", r"$a$ and $b_1$"),
        ("Split \\( a +\n b \\) here", "Split $a + b$ here"),
    ],
)
def test_inline_math_becomes_single_dollars(text: str, expected: str) -> None:
    converted = to_streamlit_markdown(text)
    assert converted == expected
    assert STREAMLIT_INLINE_MATH.search(converted), "Streamlit must see math in it"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"\[ x^2 = 4 \]", "$$\nx^2 = 4\n$$"),
        (
            "So\n\\[\n\\begin{pmatrix} a \\\\[2pt] b \\end{pmatrix}\n\\]\nholds.",
            "So\n$$\n\\begin{pmatrix} a \\\\[2pt] b \\end{pmatrix}\n$$\nholds.",
        ),
        (r"where \[ E = mc^2 \] is famous", "where\n$$\nE = mc^2\n$$\nis famous"),
        # In a list item the block keeps the item's indentation; in a quote, the quote markers.
        ("1. Solve:\n   \\[ x = 2 \\]\n2. Check", "1. Solve:\n   $$\n   x = 2\n   $$\n2. Check"),
        ("1. Solve:\n   \\[\n   x = 2\n   \\]\n2. Check", "1. Solve:\n   $$\n   x = 2\n   $$\n2. Check"),
        ("- \\[ a +\n  b \\]", "- $$\n  a +\n  b\n  $$"),
        ("> Hence \\[ y \\] ok", "> Hence\n> $$\n> y\n> $$\n> ok"),
    ],
)
def test_display_math_becomes_dollar_lines(text: str, expected: str) -> None:
    converted = to_streamlit_markdown(text)
    assert converted == expected
    assert STREAMLIT_DISPLAY_MATH.search(converted)


def test_code_is_left_untouched() -> None:
    text = (
        "Use `\\(x\\)` or ``a `\\[y\\]` b`` in code.\n"
        "```latex\n\\( inline \\) and \\[ display \\] and $5 and $6\n```\n"
        "> ~~~~\n> \\(quoted code\\)\n> ~~~~\n"
        "But \\(z\\) is math."
    )
    expected = text.replace("But \\(z\\) is math.", "But $z$ is math.")
    assert to_streamlit_markdown(text) == expected


def test_an_unclosed_code_block_still_streaming_is_code() -> None:
    text = "Before \\(a\\)\n```python\nprint('\\(b\\)')"
    assert to_streamlit_markdown(text) == "Before $a$\n```python\nprint('\\(b\\)')"


@pytest.mark.parametrize(
    "text",
    [
        "",
        "Plain text with *emphasis*, a [link](https://example.com) and `code`.",
        "# Title\n\n- item (with parentheses) [and brackets]\n\n```python\nx = 1\n```\n",
        "Unicode: 猫 ü —",
    ],
)
def test_text_without_latex_or_dollars_is_unchanged(text: str) -> None:
    assert to_streamlit_markdown(text) == text


def test_math_already_in_dollars_is_unchanged() -> None:
    text = "Inline $x^2 + 1$ and display\n$$\n\\int_0^1 x\\,dx\n$$\nand an escaped \\$5."
    assert to_streamlit_markdown(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # Not math by Streamlit's rule, but with any formula in the text Streamlit would pair these dollars,
        # so they are escaped; `\$` shows as "$" whether or not math is on.
        ("It costs $5 and $6.", "It costs \\$5 and \\$6."),
        ("From $5 to \\(x\\) dollars", "From \\$5 to $x$ dollars"),
        ("$5 and $x^2$", "\\$5 and $x^2$"),
        ("Spaced $ x $ is not math", "Spaced \\$ x \\$ is not math"),
    ],
)
def test_dollar_signs_that_are_not_math_are_escaped(text: str, expected: str) -> None:
    assert to_streamlit_markdown(text) == expected


@pytest.mark.parametrize(
    ("streamed", "shown", "rest", "finished"),
    [
        ("The area is \\(", "The area is \\(", " \\pi \\)", "The area is $\\pi$"),
        ("Area \\( \\pi r", "Area \\( \\pi r", "^2 \\).", "Area $\\pi r^2$."),
        ("Consider \\[\nx^2 +", "Consider \\[\nx^2 +", " 1\n\\]", "Consider\n$$\nx^2 + 1\n$$"),
        ("Done \\(a\\), now \\(b +", "Done $a$, now \\(b +", " c\\)", "Done $a$, now $b + c$"),
    ],
)
def test_an_unterminated_delimiter_while_streaming_is_left_alone(
    streamed: str, shown: str, rest: str, finished: str
) -> None:
    assert to_streamlit_markdown(streamed) == shown
    assert to_streamlit_markdown(streamed + rest) == finished


@pytest.mark.parametrize(
    "text",
    [
        "a LaTeX line break \\\\[2pt] is no display math",  # `\\[` is an escaped backslash, then "["
        "empty \\( \\) stays",
        "\\( a $ b \\) would end early at the dollar",
        "a blank line ends it: \\( a\n\nb \\)",
    ],
)
def test_what_is_not_a_formula_is_not_converted(text: str) -> None:
    assert to_streamlit_markdown(text) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("done\n```\ncode\n```\n", None),
        ("no code", None),
        ("open\n```python\nprint(1)", "```"),
        ("open\n````\n```\nstill code", "````"),
        ("1. item\n   ~~~\n   code", "   ~~~"),
        ("> ```\n> quoted", "> ```"),
    ],
)
def test_closing_fence(text: str, expected: str | None) -> None:
    assert closing_fence(text) == expected


def test_images_become_links_outside_code() -> None:
    """No image in an answer loads by itself (tests/test_frontend_no_remote_content.py shows it in Chromium)."""
    assert to_streamlit_markdown("![a](u) ![](v) ![r][ref]") == (
        f"{IMAGE_SIGN}[a](u) {IMAGE_SIGN}[image](v) {IMAGE_SIGN}[r][ref]"
    )
    assert to_streamlit_markdown("`![code](u)` \\![escaped](u)") == "`![code](u)` \\![escaped](u)"
    assert to_streamlit_markdown("```\n![fenced](u)\n```") == "```\n![fenced](u)\n```"


def test_plain_text_can_neither_format_nor_load() -> None:
    assert plain_text("![t](u) *b* <img>") == "\\!\\[t\\](u) \\*b\\* \\<img\\>"
    assert plain_text("1. first") == "1\\. first"
    assert plain_text("- item\n  two") == "\\- item two"
