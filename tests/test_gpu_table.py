"""The README's GPU tables and the profiles' "Where the defaults fit" comments say what the planner says
(regenerate both with `python -m benchmarks.gpu_table --update`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import gpu_table
from serve.cli import main
from serve.config.profile import profile_paths

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text()


@pytest.mark.parametrize("name", list(gpu_table.TABLES))
def test_readme_tables_are_the_planners(name: str) -> None:
    assert gpu_table.readme_table(README, name) == gpu_table.TABLES[name](), (
        f"README.md's {name} table is out of date: run python -m benchmarks.gpu_table --update"
    )


@pytest.mark.parametrize("path", profile_paths(REPO / "profiles"), ids=lambda p: p.stem)
def test_profile_comments_say_where_the_defaults_fit(path: Path) -> None:
    block = gpu_table.profile_fit_block(path.read_text())
    if path.stem.endswith("-thinking"):  # same memory as the base profile, which they point to
        assert block is None and "see that file for where it fits" in path.read_text()
        return
    assert block == gpu_table.expected_fit_block(path), (
        f"{path.name}: run python -m benchmarks.gpu_table --update"
    )


def row_cells(gpu_label: str) -> list[str]:
    table = gpu_table.readme_table(README, "quickstart")
    line = next(line for line in table.splitlines() if line.startswith(f"| {gpu_label} |"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


@pytest.mark.parametrize("spec", gpu_table.QUICKSTART_GPUS)
def test_the_quickstart_table_matches_what_serve_plan_prints(
    spec: str, capsys: pytest.CaptureFixture[str], monkeypatch
) -> None:
    for variable in ("SERVE_8B_PROFILE", "SERVE_4B_PROFILE", "SERVE_GPU"):
        monkeypatch.delenv(variable, raising=False)
    main(["--profiles-dir", str(REPO / "profiles"), "plan", "--gpu", spec, "--json"])
    plan = json.loads(capsys.readouterr().out)
    by_profile = {entry["profile"]: entry for entry in plan["profiles"]}
    up_4b, up_8b, both = row_cells(gpu_table.gpu_label(spec))
    for cell, entry in ((up_4b, by_profile["4b"]), (up_8b, by_profile["8b"])):
        if entry["starts"]:
            assert (
                f"{entry['max_model_len']:,}" in cell
                and f"share {entry['gpu_memory_utilization']:.2f}" in cell
            )
            assert cell.startswith("✓" if entry["fit"] == "full" else "⚠")
        else:
            assert cell.startswith("✗")
    expected = {
        "together": "✓ together",
        "one-gpu-each": "✓ one GPU each",
        "cannot-run-together": "⇄ one awake at a time, swapped by the gateway",
    }
    assert both.startswith(expected[plan["layout"]])


def test_the_results_file_says_how_it_was_made() -> None:
    results = json.loads((REPO / "benchmarks" / "results" / "gpu_table.json").read_text())
    assert "benchmarks.gpu_table" in results["command"]
    assert results["markdown"]["quickstart"] == gpu_table.quickstart_table()
    assert results["stack"]["l4"]["layout"] == "cannot-run-together"
