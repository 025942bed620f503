"""`serve profiles`: every profile with what it is for, its slot, and where it fits (the planner's arithmetic)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from serve.cli import main
from serve.config.profile import profile_paths, profile_summary

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles"


def run_json(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, list[dict]]:
    code = main(["profiles", "--json", *argv])
    return code, json.loads(capsys.readouterr().out)


def test_every_shipped_profile_has_a_one_line_summary() -> None:
    for path in profile_paths(PROFILES):
        summary = profile_summary(path)
        assert summary.startswith("Qwen3-VL-") and summary.endswith("."), path
        assert "`" not in summary and len(summary) < 110, path


def test_lists_every_profile_with_its_slot_and_where_it_fits(capsys: pytest.CaptureFixture[str]) -> None:
    code, items = run_json(capsys, "--profiles-dir", str(PROFILES))
    assert code == 0
    by_name = {item["name"]: item for item in items}
    assert set(by_name) == {
        "8b",
        "8b-fp8",
        "8b-thinking",
        "8b-long",
        "4b",
        "4b-fp8",
        "4b-thinking",
        "4b-long",
    }
    assert {name: item["slot"] for name, item in by_name.items()} == {
        name: name.split("-")[0] for name in by_name
    }
    assert {by_name[name]["port"] for name in ("8b", "8b-fp8", "8b-thinking")} == {8000}
    eight = by_name["8b"]
    assert eight["served_name"] == "qwen3-vl-8b" and eight["max_model_len"] == 32768
    assert eight["select_with"] == "SERVE_8B_PROFILE=8b"
    # What 8b.yaml's own comment says, from the placement: beside 4b from 48 GB, A100 40GB alone only,
    # a shorter context on an L4, not at all on a T4.
    assert eight["fits"]["H100 80GB SXM"] == "full context beside the other slot"
    assert eight["fits"]["A100 40GB"] == "full context, the GPU to itself"
    assert eight["fits"]["L4 24GB"] == "shorter context"
    assert eight["fits"]["T4 16GB"] == "no"
    assert by_name["8b-fp8"]["fits"]["L4 24GB"] == "full context, the GPU to itself"  # FP8: 32K on 24 GB
    assert eight["gpu_memory_utilization"] is None  # the placement sizes it
    # With no SERVE_*_PROFILE set, compose runs each slot's own profile.
    assert {name for name, item in by_name.items() if item["selected"]} == {"8b", "4b"}


def test_the_selected_variant_follows_the_environment_and_the_text_reads_well(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SERVE_8B_PROFILE", "8b-fp8")
    _, items = run_json(capsys, "--profiles-dir", str(PROFILES))
    assert {item["name"] for item in items if item["selected"]} == {"8b-fp8", "4b"}
    assert main(["profiles", "--profiles-dir", str(PROFILES)]) == 0
    text = capsys.readouterr().out
    assert "8b-fp8 (selected for its slot)" in text
    assert profile_summary(PROFILES / "4b-thinking.yaml") in text
    assert "slot 4b on port 8001: docker compose with SERVE_4B_PROFILE=4b-thinking" in text
    assert "does not fit: " in text and "fits with the GPU to itself: " in text and "A100 40GB" in text
    assert "GPU share sized by the placement" in text


def test_an_invalid_profile_is_listed_with_its_error_and_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shutil.copytree(PROFILES, tmp_path / "profiles")
    (tmp_path / "profiles" / "4b.yaml").write_text("# Broken on purpose.\nmodel: x\n")
    code, items = run_json(capsys, "--profiles-dir", str(tmp_path / "profiles"))
    assert code == 1
    broken = next(item for item in items if item["name"] == "4b")
    assert broken["summary"] == "Broken on purpose." and "is required" in broken["error"]
    assert all(item["error"] is None for item in items if item["name"] != "4b")
