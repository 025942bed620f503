"""`serve gateway`'s mistakes before anything starts: each is one line saying what to change, exit 2, and
the swap-mode choice (auto: sleep only where sleep mode frees memory and host RAM holds the weights)."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve.cli import main
from serve.gateway.swap import SwapMode, choose_mode

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["8b", "4b", "--upstream", "8b=http://127.0.0.1:1/v1"], "give one PROFILE=URL per profile"),
        (
            ["8b", "--upstream", "8b=http://127.0.0.1:1/v1", "--swap", "restart"],
            "--swap restart needs instances the gateway starts itself",
        ),
        (["8b", "8b"], "serve the same name"),
        (["no-such-profile"], "no-such-profile"),
    ],
)
def test_mistakes_are_one_line_and_exit_2(
    args: list[str], words: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.setenv("SERVE_GPU", "l4")  # plan for a GPU without asking nvidia-smi
    assert main(["gateway", *args, "--port", "1"]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


@pytest.mark.parametrize("value", ["0", "-1", "x"])
def test_bad_numbers_are_refused_by_the_parser(value: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["gateway", "8b", "--max-awake", value])
    assert exit_info.value.code == 2
    assert "--max-awake" in capsys.readouterr().err


def test_auto_picks_sleep_only_where_it_frees_memory_and_ram_holds_the_weights() -> None:
    common = {"supervised": True, "sleeping_weights_gib": 16.3}
    cpu = choose_mode(SwapMode.AUTO, sleep_supported=False, host_available_gib=64, **common)
    assert cpu.mode is SwapMode.RESTART and "refuses --enable-sleep-mode" in cpu.why
    short = choose_mode(SwapMode.AUTO, sleep_supported=True, host_available_gib=12, **common)
    assert short.mode is SwapMode.RESTART and "host RAM" in short.why
    roomy = choose_mode(SwapMode.AUTO, sleep_supported=True, host_available_gib=64, **common)
    assert roomy.mode is SwapMode.SLEEP
    forced = choose_mode(SwapMode.SLEEP, sleep_supported=False, host_available_gib=1, **common)
    assert forced.mode is SwapMode.SLEEP
    attached = choose_mode(
        SwapMode.AUTO, supervised=False, sleep_supported=False, sleeping_weights_gib=0, host_available_gib=0
    )
    assert attached.mode is SwapMode.SLEEP
