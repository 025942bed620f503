"""`serve k8s`: Helm values for vLLM production-stack's chart, generated from the profiles and checked against
the chart's own data files (values.yaml, values.schema.json at the pinned commit, in ../shared/reference;
skipped where that folder is absent) and against vLLM's own argument parser.

No GPU, cluster or Helm here: the GPU type is a name from the planner's table, and the chart's templates are
code from another repository that stays out of the tests. What the templates make of each key is encoded
in serve/k8s/values_model.py (read from them while writing it, and checked by rendering by hand then).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, get_args, get_origin

import pytest
import yaml
from jsonschema import Draft202012Validator
from pydantic import BaseModel, ValidationError

from harness.serve_up import REPO_ROOT
from serve.cli import main
from serve.config.profile import ProfileError, load_profile, read_profile_file, resolve_profile_path
from serve.k8s.chart import CHART_VERSION
from serve.k8s.sizing import SizingError, size_pod
from serve.k8s.values import K8sOptions, build_values, default_secret
from serve.k8s.values_model import ChartValues
from serve.planner.detect import DetectedGpu
from serve.planner.gpus import GPUS
from serve.planner.model_facts import model_facts
from serve.planner.plan import plan_profile

REFERENCE_CANDIDATES = (
    REPO_ROOT.parent / "shared" / "reference" / "production-stack",
    Path("/work/shared/reference/production-stack"),
)
REFERENCE = next((path for path in REFERENCE_CANDIDATES if (path / "values.schema.json").is_file()), None)
needs_reference = pytest.mark.skipif(
    REFERENCE is None,
    reason="the chart's data files (../shared/reference/production-stack) are not on this machine",
)
# Keys the chart's templates read that values.yaml and the schema do not list (e.g. pvcExistingClaimName,
# chatTemplate); serve k8s writes none of them today. Each added here must name the template that reads it.
TEMPLATE_ONLY_KEYS: set[str] = set()
# Objects the chart copies with toYaml into a Kubernetes field: their inside is Kubernetes' business.
OPAQUE_KEYS = {
    "servingEngineSpec.labels",
    "servingEngineSpec.strategy",
    "servingEngineSpec.serviceMonitor.metricRelabelings[]",
    "servingEngineSpec.modelSpec[].env[]",
    "servingEngineSpec.modelSpec[].nodeSelectorTerms[]",
}


def run(*args: str) -> int:
    return main(list(args))


def profile(name: str, environ: dict[str, str] | None = None, profiles_dir: Path | None = None) -> Any:
    return load_profile(resolve_profile_path(name, profiles_dir), environ or {})


def options(gpu: str = "l40s", **changes: Any) -> K8sOptions:
    defaults: dict[str, Any] = {
        "release": "qwen3-vl",
        "namespace": "default",
        "gpu": GPUS[gpu],
        "api_key_secret": default_secret("qwen3-vl", "VLLM_API_KEY"),
        "hf_token_secret": default_secret("qwen3-vl", "HF_TOKEN"),
    }
    return K8sOptions(**{**defaults, **changes})


def values_for(*names: str, gpu: str = "l40s", **changes: Any) -> dict[str, Any]:
    result = build_values([profile(name) for name in names], "v0.32.0", options(gpu, **changes))
    return result.values.to_values()


@pytest.fixture(autouse=True)
def in_repo(monkeypatch: pytest.MonkeyPatch) -> None:
    """The command reads profiles/ and docker-compose.yml from the working directory, like the others."""
    monkeypatch.chdir(REPO_ROOT)
    for name in (
        "VLLM_IMAGE_TAG",
        "SERVE_8B_GPU_MEMORY_UTILIZATION",
        "SERVE_8B_MAX_MODEL_LEN",
        "SERVE_4B_MAX_MODEL_LEN",
    ):
        monkeypatch.delenv(name, raising=False)


# ----------------------------------------------------------------------------------- the chart's data files


@pytest.fixture(scope="module")
def chart_schema() -> Draft202012Validator:
    assert REFERENCE is not None
    return Draft202012Validator(json.loads((REFERENCE / "values.schema.json").read_text()))


@pytest.fixture(scope="module")
def chart_keys() -> set[str]:
    """Every key path values.yaml or values.schema.json knows, list items as `[]`."""
    assert REFERENCE is not None
    keys: set[str] = set()

    def walk_values(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                keys.add(f"{path}.{key}".lstrip("."))
                walk_values(value, f"{path}.{key}")
        elif isinstance(node, list):
            for item in node:
                walk_values(item, f"{path}[]")

    def walk_schema(node: dict[str, Any], path: str) -> None:
        for key, value in (node.get("properties") or {}).items():
            keys.add(f"{path}.{key}".lstrip("."))
            walk_schema(value, f"{path}.{key}")
        if isinstance(node.get("items"), dict):
            walk_schema(node["items"], f"{path}[]")

    walk_values(yaml.safe_load((REFERENCE / "values.yaml").read_text()), "")
    walk_schema(json.loads((REFERENCE / "values.schema.json").read_text()), "")
    return keys | TEMPLATE_ONLY_KEYS


def key_paths(node: Any, path: str = "") -> Iterator[str]:
    """Key paths of written values, not descending into what the chart copies verbatim."""
    if path.lstrip(".") in OPAQUE_KEYS:
        return
    if isinstance(node, dict):
        for key, value in node.items():
            yield f"{path}.{key}".lstrip(".")
            yield from key_paths(value, f"{path}.{key}")
    elif isinstance(node, list):
        for item in node:
            yield from key_paths(item, f"{path}[]")


def _models_in(annotation: Any, in_list: bool = False) -> Iterator[tuple[type[BaseModel], bool]]:
    """The pydantic models a field holds, and whether as list items."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield annotation, in_list
    for argument in get_args(annotation):
        yield from _models_in(argument, in_list or get_origin(annotation) is list)


def model_key_paths(model: type[BaseModel], path: str = "") -> Iterator[str]:
    """Every key the strict description can write, from the pydantic models themselves."""
    for name, info in model.model_fields.items():
        key = f"{path}.{info.alias or name}".lstrip(".")
        yield key
        if key in OPAQUE_KEYS or f"{key}[]" in OPAQUE_KEYS:
            continue
        for inner, in_list in _models_in(info.annotation):
            yield from model_key_paths(inner, key + ("[]" if in_list else ""))


VARIANTS = {
    "defaults": {},
    "autoscaled, pinned, no key": {
        "autoscale": {"8b": {"min_replicas": 1, "max_replicas": 4}},
        "node_selector": {"nvidia.com/gpu.product": "NVIDIA-L40S"},
        "api_key_secret": None,
        "hf_token_secret": None,
        "storage_class": "fast-ssd",
        "replicas": {"4b": 3},
    },
}


@needs_reference
@pytest.mark.parametrize("variant", VARIANTS)
def test_values_pass_the_charts_schema_and_use_only_keys_it_knows(
    variant: str, chart_schema: Draft202012Validator, chart_keys: set[str]
) -> None:
    values = values_for("8b", "4b", "8b-thinking", **VARIANTS[variant])
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}" for e in chart_schema.iter_errors(values)]
    assert not errors
    unknown = sorted(set(key_paths(values)) - chart_keys)
    assert not unknown, f"keys the chart does not read: {unknown}"


@needs_reference
def test_the_strict_description_names_only_keys_the_chart_reads(chart_keys: set[str]) -> None:
    described = set(model_key_paths(ChartValues))
    assert "servingEngineSpec.modelSpec[].vllmConfig.maxModelLen" in described  # the walk reaches the leaves
    assert not sorted(described - chart_keys)


@needs_reference
def test_a_misspelt_key_passes_the_charts_schema_but_not_ours(chart_schema: Draft202012Validator) -> None:
    values = values_for("8b")
    config = values["servingEngineSpec"]["modelSpec"][0]["vllmConfig"]
    config["maxModelLength"] = config.pop("maxModelLen")
    values["servingEngineSpec"]["modelSpec"][0]["requestGpu"] = values["servingEngineSpec"]["modelSpec"][
        0
    ].pop("requestGPU")
    assert chart_schema.is_valid(values)  # Helm would render vLLM's 262K default and a pod without a GPU
    with pytest.raises(ValidationError) as caught:
        ChartValues.model_validate(values)
    message = str(caught.value)
    for wrong in ("maxModelLength", "requestGpu"):
        assert f"{wrong}\n  Extra inputs are not permitted" in message
    assert "maxModelLen\n  Field required" in message


# ------------------------------------------------------------------------------------ generated, not copied


def test_each_model_spec_carries_everything_its_profile_sets() -> None:
    spec = values_for("8b-thinking")["servingEngineSpec"]["modelSpec"][0]
    assert (spec["name"], spec["modelURL"]) == ("qwen3-vl-8b-thinking", "Qwen/Qwen3-VL-8B-Thinking")
    assert (spec["repository"], spec["tag"]) == ("vllm/vllm-openai", "v0.32.0")
    config = spec["vllmConfig"]
    assert config["enablePrefixCaching"] is True
    assert (config["maxModelLen"], config["gpuMemoryUtilization"], config["tensorParallelSize"]) == (
        32768,
        0.9,
        1,
    )
    assert config["dtype"] == "auto"
    extra = config["extraArgs"]
    raw = read_profile_file(REPO_ROOT / "profiles" / "8b-thinking.yaml")
    flags = dict(zip(extra[::2], extra[1::2], strict=True))  # every option of this profile takes a value
    assert flags["--served-model-name"] == "qwen3-vl-8b-thinking"
    assert flags["--reasoning-parser"] == "qwen3"
    assert flags["--allowed-media-domains"] == "none.invalid"
    for key in ("limit-mm-per-prompt", "mm-processor-kwargs"):  # the image (and video) budget, the media lock
        assert json.loads(flags[f"--{key}"]) == raw[key]
    assert flags["--mm-processor-cache-gb"] == str(raw["mm-processor-cache-gb"])
    assert not {"--port", "--model", "--max-model-len", "--gpu-memory-utilization"} & set(
        flags
    )  # chart fields
    assert {"name": "VLLM_MEDIA_URL_ALLOW_REDIRECTS", "value": "0"} in spec["env"]
    assert spec["hf_token"] == {"secretName": "qwen3-vl-hf-token", "secretKey": "HF_TOKEN"}


def test_a_changed_profile_changes_the_values(tmp_path: Path) -> None:
    shutil.copy(REPO_ROOT / "profiles" / "4b.yaml", tmp_path / "4b.yaml")
    before = build_values([profile("4b", profiles_dir=tmp_path)], "v0.32.0", options()).values.to_values()
    raw = yaml.safe_load((tmp_path / "4b.yaml").read_text())
    raw["max-model-len"] = 16384
    raw["limit-mm-per-prompt"] = {"image": 2, "video": 3}
    raw["enable-prefix-caching"] = False
    raw.update({"max-num-seqs": 64, "enable-chunked-prefill": True, "max-num-batched-tokens": 4096})
    (tmp_path / "4b.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    after = build_values([profile("4b", profiles_dir=tmp_path)], "v0.32.0", options()).values.to_values()

    old, new = (values["servingEngineSpec"]["modelSpec"][0]["vllmConfig"] for values in (before, after))
    assert (old["maxModelLen"], new["maxModelLen"]) == (32768, 16384)
    assert (old["enablePrefixCaching"], new["enablePrefixCaching"]) == (True, False)
    assert (new["maxNumSeqs"], new["enableChunkedPrefill"]) == (64, True)
    assert '{"image": 2, "video": 3}' in new["extraArgs"]
    assert new["extraArgs"][-2:] == ["--max-num-batched-tokens", "4096"]  # an option nobody listed
    assert "--max-num-seqs" not in new["extraArgs"]  # it has a chart field


def test_overrides_from_the_environment_reach_the_values() -> None:
    environ = {"SERVE_4B_MAX_MODEL_LEN": "16384", "SERVE_4B_QUANTIZATION": "fp8"}
    result = build_values([profile("4b", environ)], "v0.32.0", options())
    config = result.values.serving_engine_spec.model_spec[0].vllm_config
    assert config.max_model_len == 16384
    assert config.extra_args[-2:] == ["--quantization", "fp8"]


# --------------------------------------------------------------------------------- the same vLLM in the pod


@pytest.fixture(scope="module")
def vllm_parser() -> Any:
    from vllm.entrypoints.launchers.cli_args import make_arg_parser
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    return make_arg_parser(FlexibleArgumentParser())


@pytest.mark.parametrize("name", sorted(path.stem for path in (REPO_ROOT / "profiles").glob("*.yaml")))
def test_the_pod_runs_vllm_with_the_profiles_settings(name: str, vllm_parser: Any) -> None:
    """vLLM's own parser reads the chart's command line (as values_model renders it) exactly as it reads the
    profile file, once the pod's share and address replace the compose ones."""
    loaded = profile(name)
    spec = build_values([loaded], "v0.32.0", options("h100")).values.serving_engine_spec.model_spec[0]
    command = spec.command()
    assert command[:2] == ["vllm", "serve"]
    in_pod = vllm_parser.parse_args(["--model", *command[2:3], *command[3:]])
    share = str(spec.vllm_config.gpu_memory_utilization)
    from_file = vllm_parser.parse_args(
        [
            "--config",
            str(loaded.path),
            "--host",
            "0.0.0.0",
            "--port",
            "8000",
            "--gpu-memory-utilization",
            share,
        ]
    )
    differences = {
        key: (value, getattr(from_file, key))
        for key, value in vars(in_pod).items()
        if key != "config" and value != getattr(from_file, key)
    }
    assert not differences
    assert in_pod.limit_mm_per_prompt == {"image": 4, "video": 1}
    assert in_pod.media_io_kwargs == {"video": {"fps": 2, "max_frames": 16}}
    assert in_pod.allowed_media_domains == ["none.invalid"]


# ------------------------------------------------------------------------------------------------- sizing


def test_each_pod_has_its_gpu_to_itself_and_is_sized_from_the_plan() -> None:
    loaded = profile("8b")
    sizing = size_pod(loaded, GPUS["l40s"])
    # What it would hold sharing the GPU with 4b (the placement's 0.54 on one L40S).
    alone = plan_profile(
        loaded, model_facts(loaded.settings.model), DetectedGpu.idle(GPUS["l40s"]), share=0.54
    )
    assert sizing.gpu_memory_utilization == 0.9  # the placement's share with the GPU to itself
    assert sizing.kv_tokens > alone.max_tokens_in_cache
    assert sizing.max_model_len == 32768
    assert sizing.pvc_gib >= 2 * alone.weights_gib  # two revisions of the 16.3 GiB checkpoint
    assert sizing.request_memory_gib == 14  # vLLM's processes + 2 x the 4 GiB multimodal cache
    assert sizing.limit_memory_gib == sizing.request_memory_gib + 17
    spec = values_for("8b")["servingEngineSpec"]["modelSpec"][0]
    assert (spec["requestGPU"], spec["requestCPU"]) == (1, 4)
    assert (spec["requestMemory"], spec["limitMemory"], spec["pvcStorage"]) == ("14Gi", "31Gi", "35Gi")


def test_a_context_that_does_not_fit_is_shortened_with_a_warning() -> None:
    result = build_values([profile("8b")], "v0.32.0", options("l4"))
    [sizing] = result.sizings
    assert sizing.max_model_len == 8112  # what serve plan says 8B holds on an L4 at 0.9
    assert result.values.serving_engine_spec.model_spec[0].vllm_config.max_model_len == 8112
    assert result.warnings == [
        "8b: context 8,112 instead of 32,768: that is what the KV cache holds at share 0.90 of GPU 0 "
        "(L4 24GB, 22.5 GiB) after 16.3 GiB of weights"
    ]


def test_the_values_file_says_what_was_shortened(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "values.yaml"
    assert run("k8s", "8b", "--gpu", "l4", "-o", str(out)) == 0
    assert "# Note: 8b: context 8,112 instead of 32,768" in out.read_text()
    assert "warning: 8b: context 8,112 instead of 32,768" in capsys.readouterr().out


def test_an_explicit_context_that_does_not_fit_is_refused() -> None:
    with pytest.raises(
        SizingError, match=r"SERVE_8B_MAX_MODEL_LEN=32768 cannot start.*Options: an FP8 profile"
    ):
        size_pod(profile("8b", {"SERVE_8B_MAX_MODEL_LEN": "32768"}), GPUS["l4"])


def test_an_explicit_share_wins() -> None:
    sizing = size_pod(profile("4b", {"SERVE_4B_GPU_MEMORY_UTILIZATION": "0.8"}), GPUS["h100"])
    assert (sizing.gpu_memory_utilization, sizing.share_source) == (0.8, "SERVE_4B_GPU_MEMORY_UTILIZATION")


# ------------------------------------------------------------------------------------- secrets and routing


def test_secrets_are_references_never_values() -> None:
    values = values_for("8b", "4b")
    engine = values["servingEngineSpec"]
    assert engine["vllmApiKey"] == {"secretName": "qwen3-vl-api-key", "secretKey": "VLLM_API_KEY"}
    assert all(spec["hf_token"]["secretName"] == "qwen3-vl-hf-token" for spec in engine["modelSpec"])
    assert "qwen3-vl-secrets" not in json.dumps(values)  # the Secret the chart creates itself


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("api-key: s3cret", "api-key: not written into Helm values, where it would be stored in plain text"),
        ("hf-token: hf_s3cret", "hf-token: not written into Helm values"),
        (
            "data-parallel-size: 2",
            "data-parallel-size: on Kubernetes each replica is a pod of its own: use --replicas",
        ),
    ],
)
def test_options_with_no_place_in_a_pod_are_refused(tmp_path: Path, line: str, message: str) -> None:
    (tmp_path / "4b.yaml").write_text((REPO_ROOT / "profiles" / "4b.yaml").read_text() + line + "\n")
    with pytest.raises(ProfileError, match=message) as caught:
        build_values([profile("4b", profiles_dir=tmp_path)], "v0.32.0", options())
    assert "s3cret" not in str(caught.value)


def test_the_router_keeps_a_chat_on_one_replica() -> None:
    values = values_for("8b", "4b")
    assert values["routerSpec"]["routingLogic"] == "session"
    assert values["routerSpec"]["sessionKey"] == "x-session-id"
    assert values["routerSpec"]["tag"] == f"v{CHART_VERSION}"  # not latest
    # Two releases in one namespace must not discover each other's pods.
    assert values["servingEngineSpec"]["labels"] == {"environment": "qwen3-vl", "release": "qwen3-vl"}


def test_autoscaling_relabels_vllms_metrics_for_the_charts_trigger() -> None:
    values = values_for("8b", "4b", autoscale={"8b": {"min_replicas": 1, "max_replicas": 4}})
    eight, four = values["servingEngineSpec"]["modelSpec"]
    assert eight["keda"] == {"enabled": True, "minReplicaCount": 1, "maxReplicaCount": 4}
    assert "replicaCount" not in eight and four["replicaCount"] == 1
    assert values["servingEngineSpec"]["serviceMonitor"] == {
        "enabled": True,
        "metricRelabelings": [{"sourceLabels": ["model_name"], "targetLabel": "model", "action": "replace"}],
    }


@pytest.mark.vllm
def test_vllm_labels_its_queue_metric_model_name(tiny_server: Any) -> None:  # TinyServer, tests/conftest.py
    """Why the relabelling: the chart's KEDA trigger asks for {model="<name>"}, vLLM 0.32 says model_name."""
    import httpx

    metrics = httpx.get(f"{tiny_server.root_url}/metrics", timeout=10).text
    waiting = [line for line in metrics.splitlines() if line.startswith("vllm:num_requests_waiting{")]
    assert waiting
    assert all(f'model_name="{tiny_server.served_name}"' in line and "model=" not in line for line in waiting)


# ---------------------------------------------------------------------------------------------- the command


def test_the_command_writes_values_and_says_what_to_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "values.yaml"
    assert (
        run("k8s", "8b", "4b", "--gpu", "l40s", "-o", str(out), "--namespace", "vision", "--users", "16,64")
        == 0
    )
    printed = capsys.readouterr().out
    text = out.read_text()
    assert text.startswith("# Helm values for vllm-stack 0.1.12")
    assert "python -m serve k8s 8b 4b --gpu l40s" in text
    assert "routingLogic session" in text  # the why, in the file too
    assert yaml.safe_load(text)["servingEngineSpec"]["modelSpec"][1]["name"] == "qwen3-vl-4b"
    for line in (
        "helm repo add vllm https://vllm-project.github.io/production-stack",
        f"helm upgrade --install qwen3-vl vllm/vllm-stack --version {CHART_VERSION} --namespace vision -f {out}",
        "kubectl create namespace vision",
        "openssl rand -hex 32 | tr -d '\\n' | kubectl --namespace vision create secret generic qwen3-vl-api-key "
        "--from-file=VLLM_API_KEY=/dev/stdin",
        'printf %s "$HF_TOKEN" | kubectl --namespace vision create secret generic qwen3-vl-hf-token '
        "--from-file=HF_TOKEN=/dev/stdin",
        "routingLogic session",
        "qwen3-vl-8b pods run: vllm serve Qwen/Qwen3-VL-8B-Instruct --host 0.0.0.0 --port 8000",
        "Replicas for N concurrent chats",
    ):
        assert line in printed, line


def test_values_go_to_standard_output_and_the_rest_to_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    assert run("k8s", "4b", "--gpu", "h100", "--no-hf-token") == 0
    captured = capsys.readouterr()
    values = yaml.safe_load(captured.out)
    assert "hf_token" not in values["servingEngineSpec"]["modelSpec"][0]
    assert "helm upgrade --install" in captured.err and "helm" not in captured.out.split("\n", 30)[-1]


def test_no_secret_value_is_ever_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_API_KEY", "key-that-must-not-leak")
    monkeypatch.setenv("HF_TOKEN", "hf_token_that_must_not_leak")
    out = tmp_path / "values.yaml"
    page = tmp_path / "page.yaml"
    assert run("k8s", "8b", "--gpu", "h100", "-o", str(out), "--frontend", str(page)) == 0
    everything = capsys.readouterr().out + out.read_text() + page.read_text()
    assert "must-not-leak" not in everything and "must_not_leak" not in everything


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["8b", "--gpu", "gtx480"], "unknown GPU 'gtx480'"),
        (["9b", "--gpu", "l4"], "unknown profile '9b'"),
        (
            ["8b", "--gpu", "l4", "--replicas", "4b=2"],
            "--replicas 4b=...: 4b is not one of the profiles given (8b)",
        ),
        (["8b", "--gpu", "l4", "--autoscale", "8b=4-1"], "at most 1 replicas is fewer than at least 4"),
        (["8b", "--gpu", "l4", "--autoscale", "0-2"], "at least 1 replica: the trigger is the replicas' own"),
        (["8b", "--gpu", "l4", "--release", "Qwen_VL"], "release 'Qwen_VL': use lower-case letters"),
        (
            ["8b", "--gpu", "l4", "--release", "a-very-long-release-name-for-a-cluster-x"],
            "is over Kubernetes' 63",
        ),
        (["8b", "8b", "--gpu", "l4"], "served name qwen3-vl-8b is used by more than one profile"),
        (["8b", "--gpu", "l4", "--compose-file", "nowhere.yml"], "the vLLM image tag is read from it"),
    ],
)
def test_bad_input_is_refused_with_what_to_do(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run("k8s", *args) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "Traceback" not in captured.err
    assert captured.out == ""  # nothing half-written to a pipe


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--replicas", "two"], "'two': expected [PROFILE=]N"),
        (["--autoscale", "8b=4"], "'8b=4': expected [PROFILE=]MIN-MAX"),
        (["--api-key-secret", "My_Secret"], "'My_Secret': expected SECRET[:KEY]"),
        (["--node-selector", "gpu"], "'gpu': expected KEY=VALUE"),
        (["--users", "0"], "'0': expected chat counts"),
        (["--no-api-key", "--api-key-secret", "k"], "not allowed with argument --no-api-key"),
    ],
)
def test_bad_arguments_are_refused_by_the_parser(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as caught:
        run("k8s", "8b", "--gpu", "l4", *args)
    assert caught.value.code == 2
    assert message in capsys.readouterr().err


def test_a_served_name_that_cannot_name_kubernetes_objects_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = (
        (REPO_ROOT / "profiles" / "4b.yaml")
        .read_text()
        .replace("served-model-name: qwen3-vl-4b", "served-model-name: Qwen3_VL")
    )
    (tmp_path / "4b.yaml").write_text(text)
    assert run("--profiles-dir", str(tmp_path), "k8s", "4b", "--gpu", "h100") == 2
    assert "served-model-name 'Qwen3_VL' names the chart's Kubernetes objects" in capsys.readouterr().err


def test_a_failed_run_leaves_the_old_file_untouched(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out = tmp_path / "values.yaml"
    out.write_text("# the values from yesterday\n")
    monkeypatch.setenv("SERVE_8B_MAX_MODEL_LEN", "32768")
    assert run("k8s", "8b", "--gpu", "l4", "-o", str(out)) == 2
    assert out.read_text() == "# the values from yesterday\n"
    assert [path.name for path in tmp_path.iterdir()] == ["values.yaml"]  # no temporary left behind


def test_an_unwritable_output_is_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run("k8s", "8b", "--gpu", "h100", "-o", str(tmp_path / "missing" / "values.yaml")) == 2
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.parametrize(("gpu", "kv_dtype"), [("h100", "fp8"), ("a100-80gb", "auto")])
def test_the_long_profiles_kv_cache_follows_the_gpu_type(gpu: str, kv_dtype: str) -> None:
    """The placement keeps the FP8 KV cache where the GPU has FP8 and passes auto where it does not."""
    args = values_for("8b-long", gpu=gpu)["servingEngineSpec"]["modelSpec"][0]["vllmConfig"]["extraArgs"]
    assert args[args.index("--kv-cache-dtype") + 1] == kv_dtype
    assert args.count("--kv-cache-dtype") == 1
