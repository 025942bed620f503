"""Docker Compose's variable interpolation and the variables it reads (`.env` beside the file + environment)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

from serve.config.environment import environ_with_dotenv


class ComposeError(Exception):
    """A compose file that Docker Compose would reject; the message names the file, the key and the fix."""

    def __init__(
        self, problem: str, *, file: Path | None = None, key: str | None = None, fix: str | None = None
    ):
        self.problem, self.file, self.key, self.fix = problem, file, key, fix
        message = ": ".join(str(part) for part in (file, key, problem) if part)
        super().__init__(f"{message} ({fix})" if fix else message)

    def located(self, file: Path, key: str | None = None) -> ComposeError:
        """The same error, attributed to a file (and key, unless it already names one)."""
        return ComposeError(self.problem, file=file, key=self.key or key, fix=self.fix)


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_BRACED = re.compile(r"(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?+])(?P<arg>.*))?", re.DOTALL)
_ESCAPE_FIX = "write a literal $ as $$"


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """Substitute variables as Compose does: $$, $VAR, ${VAR}, ${VAR:-d}, ${VAR-d}, ${VAR:?msg}, ${VAR?msg},
    ${VAR:+alt}, ${VAR+alt}; nested in defaults too. Unset variables without a default become ''."""
    out: list[str] = []
    pos = 0
    while (dollar := text.find("$", pos)) >= 0:
        out.append(text[pos:dollar])
        following = text[dollar + 1 : dollar + 2]
        if following == "$":
            out.append("$")
            pos = dollar + 2
        elif following == "{":
            end = _closing_brace(text, dollar + 2)
            out.append(_substitute(text[dollar + 2 : end], env))
            pos = end + 1
        elif name := _NAME.match(text, dollar + 1):
            out.append(env.get(name.group(), ""))
            pos = name.end()
        else:
            raise ComposeError(f"invalid interpolation in {text!r} at position {dollar}", fix=_ESCAPE_FIX)
    out.append(text[pos:])
    return "".join(out)


def _closing_brace(text: str, start: int) -> int:
    """Index of the `}` closing the `${` that ends at `start`, skipping nested `${...}` and `$$`."""
    depth, pos = 0, start
    while pos < len(text):
        if text.startswith("$$", pos):
            pos += 2
            continue
        if text.startswith("${", pos):
            depth, pos = depth + 1, pos + 2
            continue
        if text[pos] == "}":
            if depth == 0:
                return pos
            depth -= 1
        pos += 1
    raise ComposeError(f"unterminated ${{ in {text!r}", fix="close it with } or " + _ESCAPE_FIX)


def _substitute(body: str, env: Mapping[str, str]) -> str:
    match = _BRACED.fullmatch(body)
    if not match:
        raise ComposeError(f"invalid interpolation ${{{body}}}", fix="use ${NAME}, ${NAME:-default}, ...")
    name, op, arg = match["name"], match["op"], match["arg"] or ""
    value = env.get(name)
    if op is None:
        return value or ""
    if value == "" and op.startswith(":"):  # the ':' forms treat an empty value as unset
        value = None
    if op.endswith("-"):
        return interpolate(arg, env) if value is None else value
    if op.endswith("+"):
        return "" if value is None else interpolate(arg, env)
    if value is None:  # ${NAME:?message} and ${NAME?message}
        raise ComposeError(
            f"required variable {name} is missing a value: {interpolate(arg, env) or 'no message'}",
            fix=f"set {name} in .env or the environment",
        )
    return value


def compose_env(compose_file: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """Variables Compose interpolates with: the `.env` beside the file, overridden by the environment."""
    return environ_with_dotenv(compose_file.parent / ".env", environ)
