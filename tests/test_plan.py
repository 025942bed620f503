"""`serve plan`: memory figures against the published ones and against what vLLM itself reports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from serve.cli import main
from serve.config.profile import load_profile
from serve.planner.detect import DetectedGpu
from serve.planner.gpus import find_gpu
from serve.planner.model_facts import KNOWN_MODELS, model_facts
from serve.planner.plan import plan_profile
from tests.helpers.fake_nvidia_smi import install_capture, path_with

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles"
GIB = 2**30


def idle(name: str) -> DetectedGpu:
    return DetectedGpu.idle(find_gpu(name))


def plan_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    """`serve plan ... --json` for one profile: the exit code and that profile's entry (default GPU: H100)."""
    code, whole = plan_all(capsys, *args)
    return code, whole["profiles"][0]


def plan_all(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict]:
    gpu = [] if any(a.startswith("--gpu") for a in args) else ["--gpu", "h100"]
    code = main(["--profiles-dir", str(PROFILES), "plan", *args, *gpu, "--json"])
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
    share = 81559 / 1024 * plan["gpu_memory_utilization"]
    assert plan["gpu_memory_utilization"] == 0.9  # alone on the GPU
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


def test_json_carries_the_resolved_values_and_the_layout(capsys: pytest.CaptureFixture[str]) -> None:
    code, whole = plan_all(capsys, "--gpu", "h100")  # no profiles: the stack, 8b then 4b
    assert code == 0 and whole["layout"] == "together" and whole["runs_together"] is True
    assert [p["profile"] for p in whole["profiles"]] == ["8b", "4b"]
    for entry in whole["profiles"]:
        assert entry["gpu_index"] == 0 and entry["max_model_len"] == 32768
        assert entry["vllm_flags"] == [
            "--gpu-memory-utilization", f"{entry['gpu_memory_utilization']:g}", "--max-model-len", "32768"
        ]  # fmt: skip
    assert sum(p["gpu_memory_utilization"] for p in whole["profiles"]) <= 0.9


def test_a_profile_that_does_not_fit_at_its_context_gets_the_longest_that_does(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, plan = plan_json(capsys, "8b", "--gpu", "rtx4090")
    assert code == 0 and plan["fit"] == "shorter" and plan["fits"] is True
    assert plan["max_model_len"] == plan["max_tokens_in_cache"] < plan["target_max_model_len"] == 32768
    assert f"context {plan['max_model_len']:,} instead of 32,768" in plan["warnings"][0]
    main(["--profiles-dir", str(PROFILES), "plan", "8b", "--gpu", "rtx4090"])
    assert "warning: 8b: context" in capsys.readouterr().out


def test_weights_larger_than_the_gpu_are_refused_with_alternatives(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, whole = plan_all(capsys, "8b", "--gpu", "t4")
    (plan,) = whole["profiles"]
    assert code == 1 and plan["fit"] == "refused" and plan["kv_cache_gib"] < 0
    assert "do not fit in share 0.90" in plan["refusal"]
    assert any(o.startswith("the 4B model (profile 4b): context") for o in whole["alternatives"]["8b"])
    main(["--profiles-dir", str(PROFILES), "plan", "8b", "--gpu", "t4"])
    text = capsys.readouterr().out
    assert "8b: does NOT start:" in text and "what to change: " in text and "over by" in text


def test_memory_bar_draws_both_shares_of_one_gpu(capsys: pytest.CaptureFixture[str]) -> None:
    main(["--profiles-dir", str(PROFILES), "plan", "8b", "4b", "--gpu", "h100"])
    bar = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("GPU 0 |"))
    cells = bar[len("GPU 0 |") : bar.index("|", len("GPU 0 |"))]
    assert len(cells) == 64
    # 8b then 4b: weights, overhead, KV each; weights 16.33 GiB of 79.6 -> 13 cells, 4b's 8.27 -> 7.
    assert cells.startswith("█" * 13 + "▓")
    assert cells.count("█") == 13 + 7 and cells.endswith("·")


def test_tensor_parallel_splits_weights_and_kv(tmp_path: Path) -> None:
    text = (PROFILES / "8b.yaml").read_text() + "\ntensor-parallel-size: 2\n"
    (tmp_path / "8b-tp2.yaml").write_text(text)
    single = load_profile(PROFILES / "8b.yaml", {})
    split = load_profile(tmp_path / "8b-tp2.yaml", {})
    facts, gpu = model_facts(single.settings.model), idle("l40s")
    one, two = plan_profile(single, facts, gpu), plan_profile(split, facts, gpu)
    assert two.weights_gib == pytest.approx(one.weights_gib / 2, abs=0.01)
    assert two.max_tokens_in_cache > 2 * one.max_tokens_in_cache
    assert two.decode_tokens_per_s_bound == pytest.approx(2 * one.decode_tokens_per_s_bound, rel=0.01)


def test_8b_and_4b_fit_together_on_80gb_but_not_on_40gb(capsys: pytest.CaptureFixture[str]) -> None:
    code, both = plan_all(capsys, "8b", "4b", "--gpu", "a100-80gb")
    assert code == 0 and both["layout"] == "together" and both["awake_together"] == [["8b", "4b"]]
    code, small = plan_all(capsys, "8b", "4b", "--gpu", "a100-40gb")
    assert (
        code == 1 and small["layout"] == "cannot-run-together" and small["awake_together"] == [["8b"], ["4b"]]
    )
    assert "cannot run at the same time" in small["refusal"]
    assert [p["fit"] for p in small["profiles"]] == ["full", "full"]  # each alone is fine


def test_text_output_has_a_table_and_a_verdict(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--profiles-dir", str(PROFILES), "plan", "8b", "4b", "--gpu", "h100"]) == 0
    out = capsys.readouterr().out
    assert "GPU 0: H100 80GB SXM, 79.6 GiB, 0.5 GiB in use (as given with --gpu)" in out
    assert (
        "147,456" in out
        and "16.33 GiB" in out
        and "8b + 4b: together on one GPU: they run at the same time" in out
    )


def test_plan_uses_the_detected_gpu(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch) -> None:
    """A FAKE nvidia-smi (no GPU here) printing an L4's real output."""
    monkeypatch.setenv("PATH", path_with(install_capture(tmp_path, "l4")))
    code = main(["--profiles-dir", str(PROFILES), "plan", "--json"])
    whole = json.loads(capsys.readouterr().out)
    assert code == 1 and whole["gpu_source"] == "nvidia-smi" and whole["layout"] == "cannot-run-together"
    assert whole["gpus"][0]["name"] == "NVIDIA L4" and whole["gpus"][0]["free_mib"] == 22563
    four = whole["profiles"][1]
    assert (four["profile"], four["gpu_memory_utilization"], four["max_model_len"]) == ("4b", 0.9, 32768)
    main(["--profiles-dir", str(PROFILES), "plan", "4b"])
    text = capsys.readouterr().out
    assert text.startswith("GPU 0: NVIDIA L4, 22.5 GiB, 0.5 GiB in use\n")


def test_no_gpu_and_no_override_asks_for_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no nvidia-smi anywhere
    monkeypatch.delenv("SERVE_GPU", raising=False)
    assert main(["--profiles-dir", str(PROFILES), "plan", "8b"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "no NVIDIA GPU found (nvidia-smi is not on PATH): nothing to plan for" in captured.err
    assert "--gpu NAME" in captured.err and "SERVE_GPU" in captured.err
    monkeypatch.setenv("SERVE_GPU", "l40s")
    assert main(["--profiles-dir", str(PROFILES), "plan", "8b"]) == 0
    assert "(as given with SERVE_GPU)" in capsys.readouterr().out


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
    code = main(["plan", str(tiny_server.profile_path), "--gpu-memory-gib", "8", "--json"])
    plan = json.loads(capsys.readouterr().out)["profiles"][0]  # kv-cache-memory-bytes: any GPU size will do
    assert code == 0
    assert plan["kv_bytes_per_token"] == 2 * 2 * 32 * 2 * 4  # 2 layers x 2 kv heads x 32 x K,V x float32
    assert plan["max_tokens_in_cache"] == int(logged.group(1).replace(",", ""))
    concurrency = re.search(
        r"Maximum concurrency for [\d,]+ tokens per request: ([\d.]+)x", tiny_server.vllm_log.read_text()
    )
    assert concurrency and plan["max_concurrent_at_max_len"] == pytest.approx(
        float(concurrency.group(1)), abs=0.01
    )
