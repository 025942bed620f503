"""The command line as a whole: help that reads well in a terminal, global options after the command, and
no user mistake ending in a traceback (a sweep of every command over bad arguments, run in-process)."""

from __future__ import annotations

import argparse
import socket
from pathlib import Path

import pytest

from serve.cli import COMMANDS, build_parser, main
from serve.cli.arguments import program_name
from serve.launcher.addresses import http_root, is_loopback, url_host
from serve.launcher.vllm_process import VllmProcess

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles"


def subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


# ------------------------------------------------------------------------------------------------------ help


def test_every_command_is_registered_and_has_help() -> None:
    commands = subparsers(build_parser())
    assert set(commands) == {command.NAME for command in COMMANDS}
    assert {"check", "plan", "up", "bench", "profiles", "status"} <= set(commands)


def test_help_texts_have_no_markdown_and_keep_their_line_breaks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")  # argparse's width; every epilog line fits in it
    parser = build_parser(prog="serve")
    texts = {"serve": parser.format_help()}
    texts |= {name: child.format_help() for name, child in subparsers(parser).items()}
    for name, text in texts.items():
        assert "`" not in text, f"serve {name} --help shows Markdown backticks"
    for name, child in [("serve", parser), *subparsers(parser).items()]:
        for line in (child.epilog or "").splitlines():
            assert line in texts[name], f"serve {name} --help rewrapped its epilog line {line!r}"
    assert "  serve up 8b -- --max-num-seqs 16" in texts["up"]


def test_help_is_printed_by_the_program_name_the_user_typed() -> None:
    """The console script is `serve` (its help is run in test_cli_install.py), `-m` is `python -m serve`."""
    assert program_name("/usr/local/bin/serve") == "serve"
    assert program_name("/repo/serve/__main__.py") == "python -m serve"
    assert build_parser(prog=program_name("/venv/bin/serve")).format_usage().startswith("usage: serve ")


@pytest.mark.parametrize("command", ["check", "plan", "profiles"])
def test_profiles_dir_is_accepted_before_and_after_the_command(
    command: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    only = tmp_path / "profiles"
    only.mkdir()
    (only / "4b.yaml").write_text((PROFILES / "4b.yaml").read_text())
    extra = {"check": ["--no-compose"], "plan": ["4b", "--gpu", "l4", "--json"], "profiles": []}[command]
    outputs = []
    for argv in (
        ["--profiles-dir", str(only), command, *extra],
        [command, *extra, "--profiles-dir", str(only)],
    ):
        assert main(argv) == 0, capsys.readouterr()
        outputs.append(capsys.readouterr().out)
    assert outputs[0] == outputs[1]
    assert "qwen3-vl-8b" not in outputs[0] and str(PROFILES) not in outputs[0]  # only the folder given


# ---------------------------------------------------------------------------------------------- addresses


@pytest.mark.parametrize(
    ("bind", "port", "root"),
    [
        ("127.0.0.1", 8000, "http://127.0.0.1:8000"),
        ("::1", 8001, "http://[::1]:8001"),
        ("0.0.0.0", 8000, "http://127.0.0.1:8000"),
        ("::", 8000, "http://[::1]:8000"),
        ("fe80::1", 9000, "http://[fe80::1]:9000"),
        ("localhost", 8000, "http://localhost:8000"),
    ],
)
def test_urls_bracket_ipv6_hosts_and_reach_wildcards_over_loopback(bind: str, port: int, root: str) -> None:
    assert http_root(bind, port) == root


def test_loopback_addresses() -> None:
    assert all(is_loopback(host) for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"))
    assert not any(is_loopback(host) for host in ("0.0.0.0", "::", "10.0.0.1", "example.org"))
    assert url_host("[::1]") == "[::1]" and url_host("10.0.0.1") == "10.0.0.1"


# --------------------------------------------------------------------------------------- bad-argument sweep


@pytest.fixture
def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working folder (no profiles, no .env, no compose file), and vLLM must never be started."""

    def refuse(self: VllmProcess) -> None:
        raise AssertionError("the bad-argument sweep started vLLM")

    monkeypatch.setattr(VllmProcess, "start", refuse)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SERVE_PROFILES_DIR", raising=False)
    (tmp_path / "binary.yaml").write_bytes(bytes(range(256)) * 4)
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    (tmp_path / "folder.yaml").mkdir()
    (tmp_path / "empty-dir").mkdir()
    return tmp_path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bad_argument_lists() -> list[list[str]]:
    """Explicit mistakes, then every typed option of every command fed values of the wrong kind."""
    nobody = f"http://127.0.0.1:{_free_port()}/v1"
    cases = [
        [],
        ["nope"],
        ["--profiles-dir"],
        ["check", "--no-compose", "9b"],
        ["check", "--no-compose", "binary.yaml"],
        ["check", "--no-compose", "folder.yaml"],
        ["check", "--no-compose", "list.yaml"],
        ["check", "--compose-file", "missing.yml"],
        ["check", "--compose-file", "empty-dir"],
        ["check", "--profiles-dir", "empty-dir", "--no-compose"],
        ["check", "--profiles-dir", "missing-dir", "--no-compose"],
        ["plan"],
        ["plan", "9b"],
        ["plan", "binary.yaml"],
        ["plan", "list.yaml"],
        ["plan", "folder.yaml"],
        ["plan", "missing.yaml"],
        ["plan", "8b", "--gpu", "tpu-v9"],
        ["plan", "8b", "--gpu", "l4", "--gpu-memory-gib", "24"],
        ["up"],
        ["up", "9b"],
        ["up", "binary.yaml"],
        ["up", "4b", "--port", "99999"],
        ["up", "4b", "--port", "http"],
        ["up", "4b", "--host", "not an address"],
        ["up", "4b", "--host", "192.0.2.1"],  # TEST-NET-1: an address of no machine here
        ["up", "4b", "--ready-timeout", "-1"],
        ["up", "4b", "--log-file", "empty-dir"],
        ["bench"],
        ["bench", "--endpoint", "ftp://example.org/v1"],
        ["bench", "--endpoint", "http://127.0.0.1:99999/v1"],
        ["bench", "--endpoint", nobody, "--requests", "1", "--warmup", "0"],
        ["bench", "--endpoint", nobody, "--image-dir", "missing-dir"],
        ["bench", "--endpoint", nobody, "--image-size", "huge"],
        ["profiles", "--profiles-dir", "missing-dir"],
        ["profiles", "extra-argument"],
        ["status", "--endpoint", "not-a-url"],
        ["status", "--profiles-dir", "empty-dir"],
    ]
    garbage = ["", "-1", "0", "abc", "1e999", "nan", "99999999999999999999", "::1::"]
    for name, child in subparsers(build_parser()).items():
        for action in child._actions:
            if action.option_strings and action.type not in (None, str, Path):
                cases += [[name, action.option_strings[0], value] for value in garbage]
    return cases


def test_no_user_mistake_ends_in_a_traceback(sandbox: Path, capsys: pytest.CaptureFixture[str]) -> None:
    failures = []
    for argv in bad_argument_lists():
        try:
            code = main(argv)
        except SystemExit as exit_:  # argparse's own usage errors
            code = exit_.code
        out, err = capsys.readouterr()
        text = out + err
        if code in (0, None) or "Traceback" in text or "unexpected" in text or "error" not in text.lower():
            failures.append(f"serve {' '.join(argv)!s} -> exit {code}:\n{text[-800:]}")
    assert not failures, "\n\n".join(failures)
    assert len(bad_argument_lists()) > 80  # the generic part found the typed options


def test_a_bug_is_reported_in_one_line_and_debug_shows_the_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from serve.cli import profiles

    def broken(args: argparse.Namespace, out: object) -> int:
        raise RuntimeError("boom")

    monkeypatch.setattr(profiles, "run", broken)
    monkeypatch.delenv("SERVE_DEBUG", raising=False)
    assert main(["profiles"]) == 70
    err = capsys.readouterr().err
    assert "unexpected RuntimeError: boom" in err and "SERVE_DEBUG=1" in err and "Traceback" not in err
    monkeypatch.setenv("SERVE_DEBUG", "1")
    with pytest.raises(RuntimeError, match="boom"):
        main(["profiles"])
