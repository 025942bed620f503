r"""Model answers as st.markdown shows them: LaTeX delimiters and dollar signs. No Streamlit here.

st.markdown (Streamlit 1.67) renders math only between `$...$` and `$$...$$` (the `$$` on their own lines),
but Qwen models often write `\(...\)` and `\[...\]`, which Markdown turns into plain "(...)" and "[...]".
`to_streamlit_markdown` converts those, outside code.

Dollar signs: Streamlit switches math on for the whole text as soon as it holds one `$...$` expression, and
then every pair of dollars is math, so "$5 and $6" would lose its dollars once an answer also has a formula.
So a `$` that is not part of a math expression is escaped as `\$` (rendered as a plain "$" either way). An
expression is Streamlit's own definition: `$$...$$`, or `$...$` on one line that neither starts nor ends with
a space and whose closing `$` is not followed by a digit (so "$ x $" is not math, as in Streamlit).

Nothing in an answer may make the browser load anything by itself (a prompt injected through an image or a
document could otherwise send the chat to any server in an image URL): an image, `![alt](url)` or
`![alt][ref]`, becomes a link to its URL after a picture sign ("🖼️alt", clicked or not at the user's choice).
Raw HTML needs no change: st.markdown shows it as text (it renders HTML only with unsafe_allow_html), and so
does KaTeX with `\includegraphics` and `\href` (Streamlit leaves KaTeX's `trust` off).

Code is left alone: fenced blocks (``` or ~~~, also inside lists and quotes; an unclosed one runs to the
end, as while it streams) and code spans. Indented code blocks are not recognised (in list items an indent
is ordinary text), so LaTeX in them would be converted. A delimiter that is not closed yet, as at the end
of a streaming answer, is left as it is until its closing part arrives.
"""

from __future__ import annotations

import re

# Container prefix of a line: block quote markers, indentation and a list marker.
_CONTAINER = re.compile(r"(?P<quote>(?:[ \t]*>)*)(?P<indent>[ \t]*)(?P<marker>(?:[-*+]|\d{1,9}[.)])[ \t]+)?")
_FENCE_OPEN = re.compile(
    r"(?:[ \t]*>)*[ \t]*(?:(?:[-*+]|\d{1,9}[.)])[ \t]+)?(?P<fence>`{3,}|~{3,})(?P<info>[^\n]*)\n?"
)
_BLANK_CONTAINER_LINE = re.compile(r"(?:[ \t]*>)*[ \t]*")
_NO_BLANK_LINE = r"(?:(?!\n[ \t]*\n)[\s\S])"  # any character, but the content may not span a blank line


def _math_content(name: str, delimiters: str) -> str:
    r"""Math up to its closing delimiter: backslash pairs (`\\`, `\f` of `\frac`) taken whole, so `\\[2pt]` is
    no delimiter; no blank line, and no other opening delimiter, which keeps every attempt short."""
    return rf"(?P<{name}>(?:\\[^{delimiters}]|[^\\\n]|\n(?![ \t]*\n))+?)"


_INLINE = re.compile(
    r"(?P<code>(?P<ticks>`+)(?!`)" + _NO_BLANK_LINE + r"+?(?<!`)(?P=ticks)(?!`))"  # code span
    r"|(?P<tick_run>`+)"  # backticks that open no code span
    r"|(?P<display>(?<![ \t])[ \t]*(?P<display_open>\\\[)"
    + _math_content("display_math", r"\[\]")
    + r"\\\][ \t]*)"  # \[ ... \] and the spaces around it (taken from the start of a run: no retries inside)
    r"|(?P<inline>\\\(" + _math_content("inline_math", "()") + r"\\\))"  # \( ... \)
    r"|(?P<escape>\\[\s\S])"  # a backslash escape, e.g. \$ or \\[ (a LaTeX line break, not a delimiter)
    r"|(?P<dollar_math>(?<!\$)\$\$+(?!\$)[\s\S]*?\$\$|(?<!\$)\$(?![\s$])[^$\n]*?[^\s$]\$(?!\d))"
    r"|(?P<dollar_run>\$\$+)"  # an unclosed $$ (e.g. display math still streaming)
    r"|(?P<dollar>\$)"  # any other dollar sign
    r"|(?P<image>!\[(?P<no_alt>\])?)"  # an image: a link instead
)
IMAGE_SIGN = "🖼️"


def to_streamlit_markdown(text: str) -> str:
    r"""`text` with `\(x\)` as `$x$`, `\[x\]` as a `$$` block, stray `$` escaped and images as links, outside
    code."""
    if "\\" not in text and "$" not in text and "![" not in text:
        return text
    parts, _ = _split_code_blocks(text)
    return "".join(_convert_prose(part) if is_prose else part for is_prose, part in parts)


def closing_fence(text: str) -> str | None:
    """The line that would close a fenced code block `text` leaves open (e.g. "```"), else None.

    It keeps the opening line's quote markers and list indentation, so it closes the block where it is.
    """
    return _split_code_blocks(text)[1]


def _split_code_blocks(text: str) -> tuple[list[tuple[bool, str]], str | None]:
    """`text` cut into (is_prose, part): fenced code blocks (fences included) and the prose between them;
    and the closing line of a code block left open at the end."""
    parts: list[tuple[bool, str]] = []
    current: list[str] = []
    closing: re.Pattern[str] | None = None
    close_with = ""
    for line in re.findall(r"[^\n]*\n|[^\n]+", text):
        if closing is None:
            opening = _FENCE_OPEN.fullmatch(line)
            if opening and not (opening["fence"][0] == "`" and "`" in opening["info"]):
                if current:
                    parts.append((True, "".join(current)))
                current = [line]
                fence = opening["fence"]
                closing = re.compile(rf"(?:[ \t]*>)*[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*\r?\n?")
                close_with = _continuation(line) + fence
            else:
                current.append(line)
        else:
            current.append(line)
            if closing.fullmatch(line):
                parts.append((False, "".join(current)))
                current = []
                closing = None
    if current:
        parts.append((closing is None, "".join(current)))
    return parts, None if closing is None else close_with


def _continuation(line: str) -> str:
    """What continues the container (quote, list item) `line` is in: quote markers and indentation."""
    container = _CONTAINER.match(line)
    assert container is not None  # every part of the pattern is optional
    return container["quote"] + container["indent"] + " " * len(container["marker"] or "")


def _convert_prose(prose: str) -> str:
    def replace(match: re.Match[str]) -> str:
        if match["display"] is not None:
            return _display(prose, match)
        if match["inline"] is not None:
            return _inline(match)
        if match["dollar"] is not None:
            return "\\$"
        if match["image"] is not None:
            return f"{IMAGE_SIGN}[image]" if match["no_alt"] else f"{IMAGE_SIGN}["
        return match[0]

    return _INLINE.sub(replace, prose)


def _inline(match: re.Match[str]) -> str:
    math = re.sub(r"\s*\n\s*", " ", match["inline_math"]).strip()
    # A `$` would end the math early; a trailing backslash would escape the closing `$`.
    if not math or "$" in math or math.endswith("\\"):
        return match[0]
    return f"${math}$"


def _display(prose: str, match: re.Match[str]) -> str:
    r"""`\[...\]` as `$$` lines, keeping the line's quote markers and list indentation around them."""
    math = match["display_math"]
    if "$$" in math or not math.strip():
        return match[0]
    line_start = prose.rfind("\n", 0, match.start()) + 1
    head = prose[line_start : match.start("display_open")]  # with the spaces the match took before `\[`
    prefix = _continuation(head)
    text_before = _CONTAINER.sub("", head, count=1).strip()
    spaces = prose[match.start() : match.start("display_open")]
    line_end = prose.find("\n", match.end())
    text_after = prose[match.end() : len(prose) if line_end == -1 else line_end].strip()

    first, *rest = math.split("\n")
    body = [prefix + first.strip()] if first.strip() else []
    # Later lines carry their own quote markers and indentation; the last one may hold only those.
    if rest and _BLANK_CONTAINER_LINE.fullmatch(rest[-1]):
        rest.pop()
    body += [line.rstrip() for line in rest]
    block = "$$\n" + "\n".join(body) + "\n" + prefix + "$$"
    return ("\n" + prefix if text_before else spaces) + block + ("\n" + prefix if text_after else "")


def plain_text(text: str) -> str:
    """One line of text shown as itself by a Markdown renderer (titles, file names, labels, messages): whitespace
    runs collapsed, markup and HTML characters escaped, so it can neither format nor load anything."""
    line = re.sub(r"([\\`*_\[\]<>&$~#|!])", r"\\\1", " ".join(text.split()))
    return re.sub(r"^(?:([-+=])|(\d+)([.)]))", r"\2\\\1\3", line)  # no list marker at the start


def code_span(text: str) -> str:
    """Plain text as an inline code span, on one line, with more backticks around it than it holds."""
    text = " ".join(text.split())
    ticks = "`" * (max((len(run) for run in re.findall(r"`+", text)), default=0) + 1)
    padding = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{ticks}{padding}{text}{padding}{ticks}"
