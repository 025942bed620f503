"""Profiles: the shipped files are valid, bad files get a message naming file, key, problem and fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from serve.config.profile import (
    QUANTIZATION_METHODS,
    ProfileError,
    load_profile,
    parse_human_int,
    profile_paths,
    resolve_profile_path,
)

REPO = Path(__file__).resolve().parents[1]
PROFILES = REPO / "profiles"
SHIPPED = {"8b", "4b", "8b-thinking", "4b-thinking", "8b-fp8", "4b-fp8", "8b-long", "4b-long"}


def write_profile(directory: Path, name: str, **changes: object) -> Path:
    """A copy of the shipped 8b profile with keys changed (None removes a key)."""
    data = yaml.safe_load((PROFILES / "8b.yaml").read_text())
    for key, value in changes.items():
        key = key.replace("_", "-")
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_every_shipped_profile_loads_with_what_starts_reliably() -> None:
    names = {path.stem for path in profile_paths(PROFILES)}
    assert names >= SHIPPED
    for path in profile_paths(PROFILES):
        s = load_profile(path, {}).settings
        if path.stem.endswith("-long"):  # the model card's 256K, with the KV cache halved
            assert (s.max_model_len, s.kv_cache_dtype) == (262144, "fp8"), path
        else:
            assert s.max_model_len == 32768, f"{path}: 32K holds a chat with images and fits 24 GB GPUs"
        # One video, with a frame and pixel budget of its own (not the image cap, see test_video_profiles.py).
        assert s.limit_mm_per_prompt["video"] == 1
        assert (s.video_max_tokens, s.image_max_tokens) == (1280, 1280), path
        # No share in the shipped files: the placement sizes it for the GPU it finds.
        assert s.gpu_memory_utilization is None, f"{path}: leave gpu-memory-utilization to the placement"
        assert s.model_extra["allowed-media-domains"] == ["none.invalid"]
        assert "host" not in s.model_extra, "the container must listen on all interfaces; serve up binds"


def test_a_share_written_in_a_profile_or_set_by_variable_is_explicit(tmp_path: Path) -> None:
    """The placement sizes the share unless the user chose one: in the file, or with the variable."""
    assert load_profile(PROFILES / "8b.yaml", {}).explicit_share is None
    edited = write_profile(tmp_path, "8b", gpu_memory_utilization=0.7)
    assert load_profile(edited, {}).explicit_share == (0.7, str(edited))
    by_variable = load_profile(edited, {"SERVE_8B_GPU_MEMORY_UTILIZATION": "0.6"})
    assert by_variable.explicit_share == (0.6, "SERVE_8B_GPU_MEMORY_UTILIZATION")
    # The profile's context is only the target; the variable insists on one.
    assert load_profile(PROFILES / "8b.yaml", {}).explicit_max_model_len is None
    insisted = load_profile(PROFILES / "8b.yaml", {"SERVE_8B_MAX_MODEL_LEN": "16384"})
    assert insisted.explicit_max_model_len == (16384, "SERVE_8B_MAX_MODEL_LEN")


@pytest.mark.parametrize("value", ["one", "-1", "0.5", "GPU-1234"])
def test_gpu_pin_must_be_an_index(value: str) -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile(PROFILES / "4b.yaml", {"SERVE_4B_GPU": value})
    assert f"SERVE_4B_GPU={value!r} is not a GPU index" in str(caught.value)
    assert load_profile(PROFILES / "4b.yaml", {"SERVE_4B_GPU": " 1 "}).gpu_pin == 1
    assert load_profile(PROFILES / "4b.yaml", {"SERVE_4B_GPU": ""}).gpu_pin is None


def test_variants_of_a_size_share_its_memory_and_its_port() -> None:
    """The thinking profiles point to the base profile's "where it fits": same weights, same KV cache."""
    for size in ("8b", "4b"):
        base = load_profile(PROFILES / f"{size}.yaml", {}).settings
        for variant in ("thinking", "fp8", "long"):
            other = load_profile(PROFILES / f"{size}-{variant}.yaml", {}).settings
            assert other.port == base.port
        thinking = load_profile(PROFILES / f"{size}-thinking.yaml", {}).settings
        memory_keys = ("max_model_len", "quantization", "dtype", "kv_cache_dtype", "tensor_parallel_size")
        assert [getattr(thinking, k) for k in memory_keys] == [getattr(base, k) for k in memory_keys]
        assert thinking.limit_mm_per_prompt == base.limit_mm_per_prompt


def test_thinking_profiles_set_a_reasoning_parser_and_fp8_profiles_use_fp8_checkpoints() -> None:
    for size in ("8b", "4b"):
        assert load_profile(PROFILES / f"{size}-thinking.yaml", {}).settings.reasoning_parser == "qwen3"
        assert load_profile(PROFILES / f"{size}-fp8.yaml", {}).settings.model.endswith("-Instruct-FP8")


def test_quantization_is_one_commented_line_away() -> None:
    text = (PROFILES / "8b.yaml").read_text()
    assert "# quantization: fp8" in text
    enabled = text.replace("# quantization: fp8", "quantization: fp8")
    assert yaml.safe_load(enabled)["quantization"] == "fp8"


def test_overrides_from_the_environment_apply_to_the_whole_family() -> None:
    env = {
        "SERVE_8B_GPU_MEMORY_UTILIZATION": "0.92",
        "SERVE_8B_MAX_MODEL_LEN": "16k",
        "SERVE_8B_QUANTIZATION": "fp8",
    }
    for name in ("8b", "8b-fp8", "8b-thinking", "8b-long"):
        profile = load_profile(PROFILES / f"{name}.yaml", env)
        assert profile.settings.gpu_memory_utilization == 0.92
        assert profile.settings.max_model_len == 16000
        assert profile.settings.quantization == "fp8"
        assert profile.override_args() == [
            "--gpu-memory-utilization",
            "0.92",
            "--max-model-len",
            "16k",
            "--quantization",
            "fp8",
        ]
    untouched = load_profile(PROFILES / "4b.yaml", env)
    assert untouched.settings.gpu_memory_utilization is None
    assert untouched.override_args() == []


def test_empty_override_means_unset_as_compose_passes_it() -> None:
    profile = load_profile(PROFILES / "8b.yaml", {"SERVE_8B_MAX_MODEL_LEN": ""})
    assert profile.settings.max_model_len == 32768
    assert profile.override_args() == []


def test_overrides_are_read_from_a_dotenv_file_and_the_environment_wins(tmp_path: Path, monkeypatch) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("SERVE_8B_MAX_MODEL_LEN=8192\nSERVE_8B_GPU_MEMORY_UTILIZATION=0.8\n")
    monkeypatch.setenv("SERVE_8B_GPU_MEMORY_UTILIZATION", "0.7")
    profile = load_profile(PROFILES / "8b.yaml", env_file=env_file)
    assert profile.settings.max_model_len == 8192
    assert profile.settings.gpu_memory_utilization == 0.7


def test_bad_override_names_the_variable() -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile(PROFILES / "8b.yaml", {"SERVE_8B_GPU_MEMORY_UTILIZATION": "1.5"})
    message = str(caught.value)
    assert "8b.yaml" in message and "SERVE_8B_GPU_MEMORY_UTILIZATION" in message and "(0, 1]" in message


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"gpu_memory_utilization": 1.5}, ["gpu-memory-utilization", "1.5 is outside (0, 1]", "e.g. 0.9"]),
        ({"gpu_memory_utilization": 0}, ["gpu-memory-utilization", "outside (0, 1]"]),
        ({"quantization": "fp9"}, ["quantization", "unknown method 'fp9'", "valid: awq", "fp8"]),
        ({"max_model_len": "lots"}, ["max-model-len", "not a whole number"]),
        ({"max_model_len": -5}, ["max-model-len", "not a positive number"]),
        ({"limit_mm_per_prompt": {"image": 4}}, ["limit-mm-per-prompt", "set video explicitly", "video: 0"]),
        ({"limit_mm_per_prompt": {"image": 4, "video": 0, "smell": 1}}, ["unknown modality smell"]),
        ({"served_model_name": None}, ["served-model-name", "is required"]),
        ({"port": 70000}, ["port", "65535"]),
    ],
)
def test_bad_values_are_reported_with_file_key_and_fix(
    tmp_path: Path, changes: dict, expected: list[str]
) -> None:
    path = write_profile(tmp_path, "broken", **changes)
    with pytest.raises(ProfileError) as caught:
        load_profile(path, {})
    message = str(caught.value)
    assert str(path) in message
    for fragment in expected:
        assert fragment in message


def test_yaml_syntax_error_names_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("model: Qwen/Qwen3-VL-8B-Instruct\nport: 8000\n  max-model-len: [32768\n")
    with pytest.raises(ProfileError) as caught:
        load_profile(path, {})
    assert f"{path}: YAML syntax error at line 3" in str(caught.value)


def test_null_value_and_duplicate_spelling_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "null.yaml"
    path.write_text((PROFILES / "8b.yaml").read_text() + "\nquantization:\n")
    with pytest.raises(ProfileError, match=r"'quantization' has no value .* remove the line"):
        load_profile(path, {})
    twice = tmp_path / "twice.yaml"
    twice.write_text((PROFILES / "8b.yaml").read_text() + "\nmax_model_len: 4096\n")
    with pytest.raises(ProfileError, match="'max-model-len' is given twice"):
        load_profile(twice, {})


def test_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- model\n- port\n")
    with pytest.raises(ProfileError, match="expected a mapping of vLLM options"):
        load_profile(path, {})


def test_unknown_vllm_options_pass_through_untouched(tmp_path: Path) -> None:
    path = write_profile(tmp_path, "extra", enable_prefix_caching=True, mm_processor_cache_gb=8)
    extra = load_profile(path, {}).settings.model_extra
    assert extra["enable-prefix-caching"] is True and extra["mm-processor-cache-gb"] == 8


def test_resolve_profile_by_name_or_path_and_unknown_name_lists_the_choices() -> None:
    assert resolve_profile_path("8b", PROFILES) == PROFILES / "8b.yaml"
    assert resolve_profile_path("some/dir/x.yaml", PROFILES) == Path("some/dir/x.yaml")
    with pytest.raises(ProfileError) as caught:
        resolve_profile_path("9b", PROFILES)
    assert "unknown profile '9b'" in str(caught.value) and "8b-fp8" in str(caught.value)


def test_human_readable_numbers_parse_like_vllm() -> None:
    assert parse_human_int("32k") == 32000
    assert parse_human_int("32K") == 32768
    assert parse_human_int("64M") == 64 * 2**20
    assert parse_human_int(2048) == 2048


def test_quantization_methods_match_the_installed_vllm() -> None:
    from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS as VLLM_METHODS

    assert set(QUANTIZATION_METHODS) == set(VLLM_METHODS)
