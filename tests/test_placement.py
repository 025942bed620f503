"""The placement on GPUs we cannot run here: each GPU is what a real nvidia-smi reports for it (captured output,
tests/helpers/nvidia_smi/), parsed by serve's own parser. The targets are the issue's: 4b at 32K from 24 GB,
8b at 32K from 40 GB, 4b-fp8 from 12 GB, 8b + 4b together where both fit, one GPU each on two GPUs."""

from __future__ import annotations

from pathlib import Path

import pytest

from serve.config.profile import Profile, load_profile
from serve.planner.detect import DetectedGpu, GpuProcess, GpuSource, GpuSurvey, parse_apps_csv, parse_gpu_csv
from serve.planner.gpus import GPUS
from serve.planner.model_facts import model_facts
from serve.planner.placement import Fit, Layout, place
from serve.planner.plan import CUDA_CONTEXT_GIB, MAX_GPU_SHARE, SLEEPING_INSTANCE_GIB, plan_profile
from serve.planner.resolve import loader, resolve, start_report
from tests.helpers.fake_nvidia_smi import CAPTURES, capture

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles"
GIB = 2**30
SINGLE = list(GPUS)  # smallest first
FROM_24GB = SINGLE[2:]
FROM_40GB = SINGLE[6:]


def gpus(name: str) -> list[DetectedGpu]:
    return parse_gpu_csv(capture(name))


def survey(name: str) -> GpuSurvey:
    apps = CAPTURES / f"{name}.apps.csv"
    processes = parse_apps_csv(apps.read_text()) if apps.is_file() else []
    return GpuSurvey(gpus=gpus(name), source=GpuSource.NVIDIA_SMI, processes=processes)


def profile(name: str, env: dict[str, str] | None = None) -> Profile:
    return load_profile(PROFILES / f"{name}.yaml", env or {})


def stack(env: dict[str, str] | None = None, names: tuple[str, str] = ("8b", "4b")) -> list[Profile]:
    return [profile(n, env) for n in names]


def assert_starts_by_the_planners_arithmetic(instance, gpu: DetectedGpu, held_gib: float = 0.0) -> None:
    """vLLM's two start-up rules at the resolved values: the KV cache holds one request of max-model-len,
    and share x total is free after the process's CUDA context (and what started before it holds)."""
    loaded = profile(instance.profile)
    plan = plan_profile(
        loaded,
        model_facts(loaded.settings.model),
        gpu,
        share=instance.gpu_memory_utilization,
        max_model_len=instance.max_model_len,
        kv_cache_dtype=instance.kv_cache_dtype,
    )
    assert plan.fits, instance
    assert plan.max_tokens_in_cache == instance.kv_cache_tokens
    assert instance.gpu_memory_utilization * gpu.total_gib + CUDA_CONTEXT_GIB <= gpu.free_gib - held_gib


# ------------------------------------------------------------------------------------------ the targets


@pytest.mark.parametrize("gpu", FROM_24GB)
def test_4b_the_compose_default_gets_its_full_32k_from_24gb(gpu: str) -> None:
    placement = place(stack(), gpus(gpu))
    four = placement.instance("4b")
    assert (four.fit, four.max_model_len, four.warnings) == (Fit.FULL, 32768, [])
    assert_starts_by_the_planners_arithmetic(four, gpus(gpu)[0])


def test_4b_on_16gb_starts_with_a_warned_shorter_context() -> None:
    four = place(stack(), gpus("t4")).instance("4b")
    assert four.fit is Fit.SHORTER and 8000 <= four.max_model_len < 32768
    assert four.max_model_len % 16 == 0, "whole KV blocks"
    assert four.max_model_len == four.kv_cache_tokens
    (warning,) = four.warnings
    assert f"context {four.max_model_len:,} instead of 32,768" in warning and "Tesla T4" in warning
    assert_starts_by_the_planners_arithmetic(four, gpus("t4")[0])


@pytest.mark.parametrize("gpu", ["l4", "a10g", "rtx3090", "rtx4090"])
def test_8b_on_24gb_starts_with_a_warned_context(gpu: str) -> None:
    eight = place(stack(), gpus(gpu)).instance("8b")
    assert eight.fit is Fit.SHORTER and 8000 <= eight.max_model_len < 32768
    assert eight.gpu_memory_utilization == MAX_GPU_SHARE
    assert "instead of 32,768" in eight.warnings[0]
    assert_starts_by_the_planners_arithmetic(eight, gpus(gpu)[0])


@pytest.mark.parametrize("gpu", FROM_40GB)
def test_8b_gets_32k_from_40gb(gpu: str) -> None:
    eight = place(stack(), gpus(gpu)).instance("8b")
    assert (eight.fit, eight.max_model_len) == (Fit.FULL, 32768)
    assert_starts_by_the_planners_arithmetic(eight, gpus(gpu)[0])


def test_4b_fp8_starts_on_12gb_where_4b_is_refused() -> None:
    assert place(stack(names=("8b", "4b-fp8")), gpus("rtx3060")).instance("4b-fp8").starts
    four = place(stack(), gpus("rtx3060")).instance("4b")
    assert four.fit is Fit.REFUSED and "do not fit in share 0.90" in four.refusal


@pytest.mark.parametrize("gpu", ["l40s", "a100-80gb", "h100", "h200"])
def test_8b_and_4b_together_on_one_gpu_where_both_fit_at_32k(gpu: str) -> None:
    placement = place(stack(), gpus(gpu))
    assert placement.layout is Layout.TOGETHER and placement.all_start
    assert placement.awake_together == [["8b", "4b"]]
    eight, four = placement.instances
    assert eight.gpu_index == four.gpu_index == 0
    assert (eight.max_model_len, four.max_model_len) == (32768, 32768)
    assert eight.gpu_memory_utilization + four.gpu_memory_utilization <= MAX_GPU_SHARE
    gpu0 = gpus(gpu)[0]
    # Started one after the other (compose starts 4b once 8b is healthy): 4b finds its share free.
    assert_starts_by_the_planners_arithmetic(eight, gpu0)
    held = eight.gpu_memory_utilization * gpu0.total_gib + CUDA_CONTEXT_GIB
    assert_starts_by_the_planners_arithmetic(four, gpu0, held_gib=held)


@pytest.mark.parametrize("machine", ["2xl4", "2xrtx4090"])
def test_two_gpus_one_gpu_each_pinned(machine: str) -> None:
    placement = place(stack(), gpus(machine))
    assert placement.layout is Layout.ONE_GPU_EACH and placement.all_start
    eight, four = placement.instances
    assert (eight.gpu_index, four.gpu_index) == (0, 1)
    assert eight.environment() == {"CUDA_VISIBLE_DEVICES": "0"}
    assert four.environment() == {"CUDA_VISIBLE_DEVICES": "1"}
    assert four.max_model_len == 32768 and eight.fit is Fit.SHORTER


def test_two_80gb_gpus_give_each_model_its_own() -> None:
    two = parse_gpu_csv(capture("h100") + capture("h100").replace("0, ", "1, ", 1))
    placement = place(stack(), two)
    assert placement.layout is Layout.ONE_GPU_EACH
    assert [i.gpu_memory_utilization for i in placement.instances] == [MAX_GPU_SHARE, MAX_GPU_SHARE]


@pytest.mark.parametrize("gpu", ["t4", "l4", "rtx4090", "a100-40gb"])
def test_cannot_run_together_refuses_with_the_alternatives(gpu: str) -> None:
    resolution = resolve(stack(), survey(gpu), load=loader(PROFILES, {}))
    placement = resolution.placement
    assert placement.layout is Layout.CANNOT_RUN_TOGETHER and not placement.all_start
    assert placement.awake_together == [["8b"], ["4b"]]
    assert "8b and 4b cannot run at the same time" in placement.refusal
    options = resolution.alternatives["together"]
    assert options[0].startswith("run one at a time")
    # Each is sized as if it had the GPU to itself (a stop/start swap), and beside the other asleep.
    four = placement.instance("4b")
    assert four.gpu_memory_utilization == MAX_GPU_SHARE
    total = gpus(gpu)[0].total_gib
    assert four.beside_sleeping.gpu_memory_utilization <= MAX_GPU_SHARE - SLEEPING_INSTANCE_GIB / total + 1e-9
    if gpu == "a100-40gb":  # named alternatives that were checked to fit together
        assert any("SERVE_8B_PROFILE=8b-fp8 SERVE_4B_PROFILE=4b-fp8" in o for o in options)
        (shorter,) = [o for o in options if "shorter context" in o]
        tokens = int(shorter.split("SERVE_8B_MAX_MODEL_LEN=")[1].split()[0])
        env = {"SERVE_8B_MAX_MODEL_LEN": str(tokens), "SERVE_4B_MAX_MODEL_LEN": str(tokens)}
        assert place(stack(env), gpus(gpu)).layout is Layout.TOGETHER
    if gpu != "t4":  # 8b does not start on a T4 at all, so a second one would not help
        assert any("a second GPU" in o for o in options)


def test_the_layout_does_not_depend_on_which_instance_is_up() -> None:
    """4b starting on an H100 where 8b already holds its share gets what it gets on the idle GPU."""
    idle = place(stack(), gpus("h100"))
    eight = idle.instance("8b")
    held = round(eight.gpu_memory_utilization * 81559 + CUDA_CONTEXT_GIB * 1024)
    busy = parse_gpu_csv(f"0, NVIDIA H100 80GB HBM3, 81559, {held}, {81088 - held}\n")
    later = place(stack(), busy, starting="4b")
    assert later.layout is idle.layout is Layout.TOGETHER
    assert later.instance("4b").vllm_flags() == idle.instance("4b").vllm_flags()
    assert later.instance("4b").warnings == []


# ----------------------------------------------------------------------------------- memory held by others


def test_memory_held_by_another_process_shrinks_the_share_and_names_it() -> None:
    busy = survey("rtx4090-10gb-used")
    four = place(stack(), busy.gpus, starting="4b", processes=busy.processes).instance("4b")
    assert four.starts and four.gpu_memory_utilization < MAX_GPU_SHARE
    assert four.fit is Fit.SHORTER  # 13.5 GiB free: 4b's weights leave room for less than 32K
    assert "pid 4242 /usr/bin/python3 (10,240 MiB)" in four.warnings[0]
    assert_starts_by_the_planners_arithmetic(four, busy.gpus[0])


def test_too_little_free_memory_refuses_before_any_download_and_says_who_holds_it() -> None:
    resolution = resolve(stack(), survey("rtx4090-10gb-used"), starting="8b", load=loader(PROFILES, {}))
    eight = resolution.placement.instance("8b")
    assert eight.fit is Fit.REFUSED
    assert "not enough free GPU memory" in eight.refusal and "pid 4242 /usr/bin/python3" in eight.refusal
    options = resolution.alternatives["8b"]
    assert any(o.startswith("the 4B model") for o in options)
    assert any("stop the processes" in o for o in options)


def test_processes_are_named_even_when_nvidia_smi_cannot_see_them() -> None:
    busy = gpus("rtx4090-10gb-used")
    eight = place(stack(), busy, starting="8b").instance("8b")
    assert "nvidia-smi names no process" in eight.refusal


# ------------------------------------------------------------------------------------------ explicit values


def test_an_explicit_share_wins_and_is_checked() -> None:
    four = place(stack({"SERVE_4B_GPU_MEMORY_UTILIZATION": "0.7"}), gpus("l4")).instance("4b")
    assert four.gpu_memory_utilization == 0.7 and four.share_from == "SERVE_4B_GPU_MEMORY_UTILIZATION"
    assert four.fit is Fit.FULL  # 0.7 of an L4 still holds 32K for 4B
    small = place(stack({"SERVE_4B_GPU_MEMORY_UTILIZATION": "0.5"}), gpus("l4")).instance("4b")
    assert small.fit is Fit.SHORTER and small.max_model_len == small.kv_cache_tokens < 8000
    assert "SERVE_4B_GPU_MEMORY_UTILIZATION=0.5: share 0.50" in small.warnings[0]
    assert "less than a useful chat" in small.warnings[0]
    too_small = place(stack({"SERVE_4B_GPU_MEMORY_UTILIZATION": "0.4"}), gpus("l4")).instance("4b")
    assert too_small.fit is Fit.WONT_START and too_small.gpu_memory_utilization == 0.4
    assert "SERVE_4B_GPU_MEMORY_UTILIZATION=0.4 cannot start 4b: the weights" in too_small.warnings[0]


def test_an_explicit_context_wins_and_vllm_would_refuse_it_is_warned() -> None:
    eight = place(stack({"SERVE_8B_MAX_MODEL_LEN": "65536"}), gpus("l4")).instance("8b")
    assert eight.fit is Fit.WONT_START and eight.max_model_len == 65536
    assert "SERVE_8B_MAX_MODEL_LEN=65536 cannot start" in eight.warnings[0]
    assert eight.vllm_flags()[-2:] == ["--max-model-len", "65536"]  # passed on as asked


def test_a_share_written_in_the_profile_wins(tmp_path: Path) -> None:
    edited = tmp_path / "4b.yaml"
    edited.write_text((PROFILES / "4b.yaml").read_text() + "gpu-memory-utilization: 0.6\n")
    four = place([profile("8b"), load_profile(edited, {})], gpus("h100")).instance("4b")
    assert four.gpu_memory_utilization == 0.6 and four.share_from == str(edited)


def test_explicit_shares_that_leave_no_room_make_them_one_at_a_time() -> None:
    placement = place(stack({"SERVE_4B_GPU_MEMORY_UTILIZATION": "0.9"}), gpus("h100"))
    assert placement.layout is Layout.CANNOT_RUN_TOGETHER
    assert placement.instance("4b").gpu_memory_utilization == 0.9


def test_a_gpu_chosen_by_hand() -> None:
    placement = place(stack({"SERVE_8B_GPU": "1"}), gpus("2xl4"))
    assert [i.gpu_index for i in placement.instances] == [1, 0]
    nowhere = place(stack({"SERVE_8B_GPU": "3"}), gpus("2xl4")).instance("8b")
    assert nowhere.fit is Fit.REFUSED
    assert "SERVE_8B_GPU=3 names no GPU" in nowhere.refusal and "GPUs here: 0, 1" in nowhere.refusal


def test_a_tensor_parallel_instance_takes_its_gpus_to_itself(tmp_path: Path) -> None:
    split = tmp_path / "8b.yaml"
    split.write_text((PROFILES / "8b.yaml").read_text() + "tensor-parallel-size: 2\n")
    placement = place([load_profile(split, {}), profile("4b")], gpus("2xl4"))
    eight = placement.instance("8b")
    assert eight.gpu_indices == [0, 1] and eight.max_model_len == 32768
    assert eight.environment() == {"CUDA_VISIBLE_DEVICES": "0,1"}
    assert placement.layout is Layout.CANNOT_RUN_TOGETHER  # 4b would need a third GPU


# ------------------------------------------------------------------------------------------------- long context


def test_long_context_full_256k_on_an_80gb_gpu_alone() -> None:
    long = place([profile("8b-long")], gpus("h100")).instance("8b-long")
    assert (long.fit, long.max_model_len, long.kv_cache_dtype) == (Fit.FULL, 262144, None)
    assert long.plan.kv_bytes_per_token == 147456 // 2  # FP8 KV: half of BF16's 144 KiB


def test_long_context_on_ampere_falls_back_to_a_bf16_cache_and_says_so() -> None:
    long = place([profile("8b-long")], gpus("a100-80gb")).instance("8b-long")
    assert long.kv_cache_dtype == "auto" and long.vllm_flags()[-2:] == ["--kv-cache-dtype", "auto"]
    assert long.plan.kv_bytes_per_token == 147456
    assert "has no FP8" in long.warnings[0]
    assert long.max_model_len == 262144  # 80 GB holds 256K even in BF16


@pytest.mark.parametrize("gpu", ["l4", "rtx4090"])
def test_long_context_on_24gb_gets_the_longest_that_fits_warned(gpu: str) -> None:
    long = place([profile("4b-long")], gpus(gpu)).instance("4b-long")
    assert long.fit is Fit.SHORTER and 32768 < long.max_model_len < 262144
    assert_starts_by_the_planners_arithmetic(long, gpus(gpu)[0])


# -------------------------------------------------------------------------------------------------- the output


def test_the_one_line_says_where_share_context_and_cache() -> None:
    line = place(stack(), gpus("l4")).instance("4b").line()
    assert line.startswith("4b on GPU 0 (NVIDIA L4, 22.5 GiB): share 0.90, context 32,768, KV cache ")
    assert line.endswith("K tokens = 2.0 full-context requests")


def test_flags_and_pure_use_for_a_gpu_kind_without_detection() -> None:
    """Issue 16's use: each pod has a GPU of a kind to itself (no nvidia-smi involved)."""
    from serve.planner.gpus import find_gpu

    four = place([profile("4b")], [DetectedGpu.idle(find_gpu("l40s"))]).instance("4b")
    assert four.vllm_flags() == ["--gpu-memory-utilization", "0.9", "--max-model-len", "32768"]
    assert four.plan.decode_tokens_per_s_bound == pytest.approx(97, abs=1)  # L40S: 864 GB/s over 8.9 GB


def test_survey_processes_are_parsed_from_the_capture() -> None:
    assert survey("rtx4090-10gb-used").processes == [
        GpuProcess(pid=4242, name="/usr/bin/python3", used_mib=10240)
    ]


def test_starting_the_second_model_where_they_cannot_run_together_is_refused_with_the_options() -> None:
    """8b already holds 0.9 of a 4090 (one at a time on 24 GB): starting 4b as well is refused, nothing downloads."""
    held = round(0.9 * 24564 + CUDA_CONTEXT_GIB * 1024)
    busy = GpuSurvey(
        gpus=parse_gpu_csv(f"0, NVIDIA GeForce RTX 4090, 24564, {held}, {24093 - held}\n"),
        source=GpuSource.NVIDIA_SMI,
        processes=[GpuProcess(pid=77, name="python3", used_mib=held)],
    )
    resolution = resolve(stack(), busy, starting="4b", load=loader(PROFILES, {}))
    lines, starts = start_report(resolution, "4b")
    assert not starts
    assert any(line.startswith("error: 4b is not started, so nothing is downloaded") for line in lines)
    assert any("pid 77 python3" in line for line in lines)
    (note,) = [line for line in lines if line.startswith("note: ")]
    assert "8b and 4b cannot run at the same time" in note and "run one at a time" in note
