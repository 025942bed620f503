"""`serve plan`: memory figures against the published ones and against what vLLM itself reports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from serve.cli import main
from serve.config.profile import load_profile
from serve.planner.gpus import GPUS, find_gpu
from serve.planner.model_facts import KNOWN_MODELS, model_facts
from serve.planner.plan import plan_profile

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles"
GIB = 2**30


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    code = main(["--profiles-dir", str(PROFILES), "plan", *args, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_parameter_counts_match_the_published_checkpoints() -> None:
    # 8.767 B (ViT 576.4 M + LM 8.191 B) and 4,437,815,808 from the model cards / hub API.
    assert KNOWN_MODELS["Qwen/Qwen3-VL-8B-Instruct"].total_params == pytest.approx(8.767e9, rel=0.002)
    assert KNOWN_MODELS["Qwen/Qwen3-VL-8B-Instruct"].vision_params == pytest.approx(576.4e6, rel=0.005)
    assert KNOWN_MODELS["Qwen/Qwen3-VL-4B-Instruct"].total_params == pytest.approx(4_437_815_808, rel=0.002)


def test_8b_bf16_weights_and_kv_bytes_per_token(capsys: pytest.CaptureFixture[str]) -> None:
    code, plan = plan_json(capsys, "8b")
    assert code == 0
    assert plan["weights_gib"] == pytest.approx(16.3, rel=0.05)  # 17,534,247,392 B on disk = 16.33 GiB
    assert plan["kv_bytes_per_token"] == 147_456  # 36 layers x 8 kv heads x 128 x 2 x 2 bytes
    for key in ("kv_cache_gib", "max_tokens_in_cache", "max_concurrent_at_max_len", "fits"):
        assert key in plan


def test_4b_has_the_same_kv_bytes_per_token_and_half_the_weights(capsys: pytest.CaptureFixture[str]) -> None:
    _, plan_4b = plan_json(capsys, "4b")
    assert plan_4b["kv_bytes_per_token"] == 147_456
    assert plan_4b["weights_gib"] == pytest.approx(4.4378e9 * 2 / GIB, rel=0.01)


def test_kv_cache_arithmetic_is_consistent(capsys: pytest.CaptureFixture[str]) -> None:
    _, plan = plan_json(capsys, "8b", "--gpu", "h100")
    share = 79.6 * 0.55
    assert plan["kv_cache_gib"] == pytest.approx(
        share - plan["weights_gib"] - plan["runtime_overhead_gib"], abs=0.02
    )
    assert plan["max_tokens_in_cache"] == pytest.approx(plan["kv_cache_gib"] * GIB / 147_456, rel=0.001)
    assert plan["max_concurrent_at_max_len"] == pytest.approx(plan["max_tokens_in_cache"] / 32768, abs=0.01)
    assert plan["decode_tokens_per_s_bound"] == pytest.approx(190, rel=0.03)  # 3.35 TB/s / 17.5 GB


def test_fp8_checkpoints_shrink_the_decoder_weights(capsys: pytest.CaptureFixture[str]) -> None:
    _, bf16 = plan_json(capsys, "8b")
    _, fp8 = plan_json(capsys, "8b-fp8")
    facts = KNOWN_MODELS["Qwen/Qwen3-VL-8B-Instruct-FP8"]
    assert fp8["weight_quantization"] == "fp8"
    assert bf16["weights_gib"] - fp8["weights_gib"] == pytest.approx(
        facts.decoder_linear_params / GIB, rel=0.01
    )
    assert fp8["max_tokens_in_cache"] > bf16["max_tokens_in_cache"]


def test_a_profile_that_does_not_fit_says_what_would(capsys: pytest.CaptureFixture[str]) -> None:
    code, plan = plan_json(capsys, "8b", "--gpu", "a100-40gb")
    assert code == 1 and plan["fits"] is False
    assert 0 < plan["largest_max_model_len"] < plan["max_model_len"]
    assert plan["fraction_needed"] > plan["gpu_memory_utilization"]
    # The suggested fraction really fits: plan again with it.
    profile = load_profile(
        PROFILES / "8b.yaml", {"SERVE_8B_GPU_MEMORY_UTILIZATION": str(plan["fraction_needed"])}
    )
    again = plan_profile(profile, model_facts(profile.settings.model), find_gpu("a100-40gb"))
    assert again.fits
    main(["--profiles-dir", str(PROFILES), "plan", "8b", "--gpu", "a100-40gb"])
    text = capsys.readouterr().out
    assert "8b: does NOT fit at max-model-len 32,768 on this GPU. Options:" in text
    assert f"SERVE_8B_GPU_MEMORY_UTILIZATION={plan['fraction_needed']:g}" in text
    assert f"SERVE_8B_MAX_MODEL_LEN={plan['largest_max_model_len']}" in text
    assert "an FP8 profile" in text and "the 4B model" in text
    # ...and the largest context it names really fits at the profile's share.
    shorter = load_profile(
        PROFILES / "8b.yaml", {"SERVE_8B_MAX_MODEL_LEN": str(plan["largest_max_model_len"])}
    )
    assert plan_profile(shorter, model_facts(shorter.settings.model), find_gpu("a100-40gb")).fits


def test_weights_larger_than_the_share(capsys: pytest.CaptureFixture[str]) -> None:
    code, plan = plan_json(capsys, "8b", "--gpu-memory-gib", "24")
    assert code == 1 and plan["fits"] is False and plan["max_tokens_in_cache"] == 0
    assert plan["kv_cache_gib"] < 0
    main(["--profiles-dir", str(PROFILES), "plan", "8b", "--gpu-memory-gib", "24"])
    text = capsys.readouterr().out
    assert f"exceed its 13.2 GiB share by {-plan['kv_cache_gib']:.1f} GiB" in text
    # Not at this share; with the GPU to itself a shorter context fits, and the planner says which.
    assert (
        f"SERVE_8B_GPU_MEMORY_UTILIZATION=0.9 with SERVE_8B_MAX_MODEL_LEN={plan['largest_max_model_len_alone']}"
        in text
    )
    alone = load_profile(
        PROFILES / "8b.yaml",
        {
            "SERVE_8B_GPU_MEMORY_UTILIZATION": "0.9",
            "SERVE_8B_MAX_MODEL_LEN": str(plan["largest_max_model_len_alone"]),
        },
    )
    assert plan_profile(alone, model_facts(alone.settings.model), GPUS["rtx4090"]).fits


def test_memory_bar_draws_both_shares_of_one_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--profiles-dir", str(PROFILES), "plan", "8b", "4b", "--gpu", "h100"])
    bar = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("|"))
    cells = bar[1 : bar.index("|", 1)]
    assert len(cells) == 64
    # 8b then 4b: weights, overhead, KV each; weights 16.33 GiB of 79.6 -> 13 cells, 4b's 8.27 -> 7.
    assert cells.startswith("█" * 13 + "▓")
    assert cells.count("█") == 13 + 7 and cells.endswith("·")


def test_tensor_parallel_splits_weights_and_kv(tmp_path: Path) -> None:
    text = (PROFILES / "8b.yaml").read_text() + "\ntensor-parallel-size: 2\n"
    (tmp_path / "8b-tp2.yaml").write_text(text)
    single = load_profile(PROFILES / "8b.yaml", {})
    split = load_profile(tmp_path / "8b-tp2.yaml", {})
    facts, gpu = model_facts(single.settings.model), GPUS["l40s"]
    one, two = plan_profile(single, facts, gpu), plan_profile(split, facts, gpu)
    assert two.weights_gib == pytest.approx(one.weights_gib / 2, abs=0.01)
    assert two.max_tokens_in_cache > 2 * one.max_tokens_in_cache
    assert two.decode_tokens_per_s_bound == pytest.approx(2 * one.decode_tokens_per_s_bound, rel=0.01)


def test_8b_and_4b_fit_together_on_80gb_but_not_on_40gb(capsys: pytest.CaptureFixture[str]) -> None:
    code, both = plan_json(capsys, "8b", "4b", "--gpu", "a100-80gb")
    assert code == 0 and both["together"]["fits"] is True and both["together"]["total_fraction"] == 0.9
    code, small = plan_json(capsys, "8b", "4b", "--gpu", "a100-40gb")
    assert code == 1 and small["together"]["fits"] is False
    assert any("does not fit" in reason for reason in small["together"]["reasons"])


def test_text_output_has_a_table_and_a_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--profiles-dir", str(PROFILES), "plan", "8b", "4b", "--gpu", "h100"]) == 0
    out = capsys.readouterr().out
    assert "147,456" in out and "16.33 GiB" in out and "fit together on one GPU" in out


@pytest.mark.parametrize("size", ["0", "-8", "lots"])
def test_gpu_memory_must_be_a_positive_size(capsys: pytest.CaptureFixture[str], size: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--profiles-dir", str(PROFILES), "plan", "8b", "--gpu-memory-gib", size])
    assert exited.value.code == 2
    assert f"{size!r} is not a memory size in GiB" in capsys.readouterr().err


def test_unknown_gpu_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--profiles-dir", str(PROFILES), "plan", "8b", "--gpu", "b300"]) == 2
    err = capsys.readouterr().err
    assert "unknown GPU 'b300'" in err and "rtx4090" in err


@pytest.mark.vllm
def test_plan_matches_the_kv_capacity_vllm_logs_for_the_tiny_server(tiny_server, capsys) -> None:
    """The planner reads the tiny checkpoint's config.json; vLLM logs what it actually allocated."""
    logged = re.search(r"KV cache size: ([\d,]+) tokens", tiny_server.vllm_log.read_text())
    assert logged, "vLLM did not log its KV cache size"
    code = main(["plan", str(tiny_server.profile_path), "--json"])
    plan = json.loads(capsys.readouterr().out)
    assert code == 0
    assert plan["kv_bytes_per_token"] == 2 * 2 * 32 * 2 * 4  # 2 layers x 2 kv heads x 32 x K,V x float32
    assert plan["max_tokens_in_cache"] == int(logged.group(1).replace(",", ""))
    concurrency = re.search(
        r"Maximum concurrency for [\d,]+ tokens per request: ([\d.]+)x", tiny_server.vllm_log.read_text()
    )
    assert concurrency and plan["max_concurrent_at_max_len"] == pytest.approx(
        float(concurrency.group(1)), abs=0.01
    )


@pytest.mark.parametrize(
    ("profile", "gpu", "env", "fits"),
    [
        # The "where the defaults fit" comments in profiles/*.yaml, checked against the planner.
        ("8b", "l40s", {}, True),
        ("8b", "a100-40gb", {}, False),
        ("8b", "a100-40gb", {"SERVE_8B_GPU_MEMORY_UTILIZATION": "0.9"}, True),
        ("8b", "l4", {"SERVE_8B_GPU_MEMORY_UTILIZATION": "0.9"}, False),
        ("8b", "l4", {"SERVE_8B_GPU_MEMORY_UTILIZATION": "0.9", "SERVE_8B_MAX_MODEL_LEN": "6144"}, True),
        (
            "8b",
            "rtx4090",
            {"SERVE_8B_GPU_MEMORY_UTILIZATION": "0.9", "SERVE_8B_MAX_MODEL_LEN": "16384"},
            True,
        ),
        ("4b", "l40s", {}, True),
        ("4b", "l4", {}, False),
        ("4b", "l4", {"SERVE_4B_GPU_MEMORY_UTILIZATION": "0.9"}, True),
        ("8b-fp8", "a100-40gb", {}, True),
        ("8b-fp8", "l4", {}, False),
        ("8b-fp8", "l4", {"SERVE_8B_GPU_MEMORY_UTILIZATION": "0.9"}, True),
        ("4b-fp8", "l4", {"SERVE_4B_GPU_MEMORY_UTILIZATION": "0.9"}, True),
    ],
)
def test_profile_comments_agree_with_the_planner(profile: str, gpu: str, env: dict, fits: bool) -> None:
    loaded = load_profile(PROFILES / f"{profile}.yaml", env)
    assert plan_profile(loaded, model_facts(loaded.settings.model), find_gpu(gpu)).fits is fits
