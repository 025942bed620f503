"""Helm values for vllm-stack from profiles: one modelSpec per profile, the router, secrets as references.

Every vLLM option comes from the profile file (serve.k8s.vllm_flags), every size from the plan
(serve.k8s.sizing); this module only assembles them into the strict description (serve.k8s.values_model).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from serve.compose.file import VLLM_IMAGE
from serve.config.profile import Profile, ProfileError
from serve.k8s.chart import CHART_NAME, ENGINE_CONTAINER_PORT, ROUTER_IMAGE, ROUTER_TAG
from serve.k8s.sizing import PodSizing, size_pod
from serve.k8s.values_model import (
    DNS_LABEL,
    ChartValues,
    EnvVar,
    HttpGet,
    Keda,
    ModelSpec,
    NodeSelectorRequirement,
    NodeSelectorTerm,
    RelabelConfig,
    RollingUpdate,
    RouterSpec,
    SecretRef,
    ServiceMonitor,
    ServingEngineSpec,
    StartupProbe,
    Strategy,
    VllmConfig,
)
from serve.k8s.vllm_flags import split_profile
from serve.launcher.vllm_process import SAFE_VLLM_DEFAULTS
from serve.planner.gpus import Gpu

# The header the page sends with its chat id, and the router hashes (routingLogic: session).
SESSION_HEADER = "x-session-id"
ROUTING_WHY = (
    f"routingLogic session: the router hashes the {SESSION_HEADER} header onto a ring of each model's replicas, "
    "so every turn of a chat (which re-sends the whole history, images included) reaches the replica whose "
    "prefix cache and multimodal processor cache already hold it, and only the new message is computed. The "
    "chat page sends its chat id in that header; other clients should send one per conversation (OpenAI SDK: "
    f'extra_headers={{"{SESSION_HEADER}": conversation_id}}), else they go to the least busy replica. '
    "prefixaware would match the text parts only (images are ignored, so chats about different photos with "
    "the same question look alike) and keeps its table in each router replica's memory; roundrobin sends "
    "each turn to another replica, which recomputes the history."
)
# Long enough for a first download of the weights (17 GB for 8B), like compose's 30-minute start period.
STARTUP_PERIOD_S = 10
STARTUP_FAILURES = 180
# vLLM 0.32 labels its metrics model_name; the chart's KEDA trigger selects on model.
VLLM_MODEL_LABEL = "model_name"
CHART_MODEL_LABEL = "model"
# Helm release names are DNS labels of at most 53 characters (helm's own limit).
MAX_RELEASE_LENGTH = 53


class Autoscale(BaseModel):
    model_config = ConfigDict(frozen=True)

    min_replicas: int = Field(description="Fewest replicas KEDA keeps, at least 1.")
    max_replicas: int = Field(description="Most replicas KEDA starts.")

    @model_validator(mode="after")
    def _ordered(self) -> Autoscale:
        if self.min_replicas < 1:
            raise ValueError(
                "at least 1 replica: the trigger is the replicas' own queue metric, so from 0 replicas KEDA would "
                "never see a request and never scale up (the router answers 404 meanwhile)"
            )
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"at most {self.max_replicas} replicas is fewer than at least {self.min_replicas}"
            )
        return self


class K8sOptions(BaseModel):
    """What the command line chooses besides the profiles."""

    model_config = ConfigDict(frozen=True)

    release: str = Field(description="Helm release name; prefixes every object.")
    namespace: str = Field(description="Namespace of the release (and of the Secrets it references).")
    gpu: Gpu = Field(description="GPU type of the nodes; each pod has its GPU(s) to itself.")
    replicas: Mapping[str, int] = Field(default_factory=dict, description="Profile -> replicas (default 1).")
    autoscale: Mapping[str, Autoscale] = Field(default_factory=dict, description="Profile -> KEDA bounds.")
    api_key_secret: SecretRef | None = Field(description="Secret key holding VLLM_API_KEY; None = no key.")
    hf_token_secret: SecretRef | None = Field(description="Secret key holding HF_TOKEN; None = no token.")
    storage_class: str | None = Field(
        None, description="StorageClass of the weights volumes; None = default."
    )
    node_selector: Mapping[str, str] = Field(
        default_factory=dict, description="Node label -> required value."
    )
    runtime_class: str = Field("nvidia", description="runtimeClassName of the vLLM pods ('' = none).")


class K8sValues(BaseModel):
    """The values and what went into them."""

    values: ChartValues = Field(description="What the values file holds.")
    sizings: list[PodSizing] = Field(description="Per profile, in order: the pod's sizing.")
    served_names: list[str] = Field(description="Per profile, in order: its served name (= modelSpec.name).")
    warnings: list[str] = Field(description="Everything changed from the profiles, and why.")


def default_secret(release: str, key: str) -> SecretRef:
    """`<release>-api-key` / `<release>-hf-token`; never `<release>-secrets`, which the chart creates itself."""
    suffix = {"VLLM_API_KEY": "api-key", "HF_TOKEN": "hf-token"}[key]
    return SecretRef(secretName=f"{release}-{suffix}", secretKey=key)


def check_names(release: str, served_names: Sequence[str]) -> None:
    """The chart derives DNS labels (max 63) from the release and model names; refuse what would not fit."""
    if len(release) > MAX_RELEASE_LENGTH or not DNS_LABEL.match(release):
        raise ProfileError(
            f"release {release!r}: use lower-case letters, digits and '-', at most {MAX_RELEASE_LENGTH} characters"
        )
    for name in served_names:
        if not DNS_LABEL.match(name):
            raise ProfileError(
                f"served-model-name {name!r} names the chart's Kubernetes objects and must be lower-case letters, "
                "digits and '-' (e.g. qwen3-vl-8b); change it in the profile"
            )
        longest = max(f"{release}-{name}-engine-service", f"{release}-{name}-{CHART_NAME}", key=len)
        if len(longest) > 63:
            raise ProfileError(
                f"{longest!r} ({len(longest)} characters), a name the chart builds from the release and "
                f"served name {name!r}, is over Kubernetes' 63; choose a shorter --release"
            )


def _model_spec(profile: Profile, sizing: PodSizing, image_tag: str, options: K8sOptions) -> ModelSpec:
    s = profile.settings
    flags = split_profile(
        profile, {"kv-cache-dtype": sizing.kv_cache_dtype} if sizing.kv_cache_dtype else None
    )
    autoscale = options.autoscale.get(profile.name)
    selector = [
        NodeSelectorRequirement(key=key, values=[value])
        for key, value in sorted(options.node_selector.items())
    ]
    try:
        vllm = VllmConfig(
            enableChunkedPrefill=flags.chart_fields.get("enable-chunked-prefill"),
            # vLLM's own default is on; the chart turns it off unless told.
            enablePrefixCaching=flags.chart_fields.get("enable-prefix-caching", True),
            maxModelLen=sizing.max_model_len,
            dtype=s.dtype,
            tensorParallelSize=s.tensor_parallel_size,
            maxNumSeqs=flags.chart_fields.get("max-num-seqs"),
            gpuMemoryUtilization=sizing.gpu_memory_utilization,
            extraArgs=flags.extra_args,
        )
    except ValidationError as error:
        raise ProfileError(f"{profile.path}: {validation_message(error)}") from None
    return ModelSpec(
        name=s.served_name,
        repository=VLLM_IMAGE,
        tag=image_tag,
        modelURL=s.model,
        replicaCount=None if autoscale else options.replicas.get(profile.name, 1),
        requestCPU=sizing.request_cpu,
        requestMemory=f"{sizing.request_memory_gib}Gi",
        limitMemory=f"{sizing.limit_memory_gib}Gi",
        requestGPU=sizing.gpus_per_pod,
        pvcStorage=f"{sizing.pvc_gib}Gi",
        storageClass=options.storage_class,
        vllmConfig=vllm,
        hf_token=options.hf_token_secret,
        env=[EnvVar(name=name, value=value) for name, value in SAFE_VLLM_DEFAULTS.items()],
        nodeSelectorTerms=[NodeSelectorTerm(matchExpressions=selector)] if selector else None,
        keda=(
            Keda(minReplicaCount=autoscale.min_replicas, maxReplicaCount=autoscale.max_replicas)
            if autoscale
            else None
        ),
    )


def validation_message(error: ValidationError) -> str:
    """The first problem pydantic found, as `key: what is wrong`."""
    item = error.errors()[0]
    where = ".".join(str(part) for part in item["loc"])
    message = item["msg"].removeprefix("Value error, ")
    return f"{where}: {message}" if where else message


def build_values(profiles: Sequence[Profile], image_tag: str, options: K8sOptions) -> K8sValues:
    """Values for `profiles` on `options.gpu`; ProfileError / SizingError say what to change."""
    served = [profile.settings.served_name for profile in profiles]
    check_names(options.release, served)
    duplicates = sorted({name for name in served if served.count(name) > 1})
    if duplicates:
        raise ProfileError(
            f"served name {', '.join(duplicates)} is used by more than one profile: the router could not tell them "
            "apart; give each profile its own served-model-name"
        )
    sizings = [size_pod(profile, options.gpu) for profile in profiles]
    specs = [_model_spec(p, sizing, image_tag, options) for p, sizing in zip(profiles, sizings, strict=True)]
    engine = ServingEngineSpec(
        labels={"environment": options.release, "release": options.release},
        vllmApiKey=options.api_key_secret,
        imagePullPolicy="IfNotPresent",
        runtimeClassName=options.runtime_class,
        strategy=Strategy(rollingUpdate=RollingUpdate(maxSurge=0, maxUnavailable=1)),
        startupProbe=StartupProbe(
            initialDelaySeconds=15,
            periodSeconds=STARTUP_PERIOD_S,
            failureThreshold=STARTUP_FAILURES,
            httpGet=HttpGet(path="/health", port=ENGINE_CONTAINER_PORT),
        ),
        serviceMonitor=(
            ServiceMonitor(
                metricRelabelings=[
                    RelabelConfig(sourceLabels=[VLLM_MODEL_LABEL], targetLabel=CHART_MODEL_LABEL)
                ]
            )
            if options.autoscale
            else None
        ),
        modelSpec=specs,
    )
    router = RouterSpec(
        repository=ROUTER_IMAGE,
        tag=ROUTER_TAG,
        imagePullPolicy="IfNotPresent",
        routingLogic="session",
        sessionKey=SESSION_HEADER,
    )
    return K8sValues(
        values=ChartValues(servingEngineSpec=engine, routerSpec=router),
        sizings=sizings,
        served_names=served,
        warnings=[warning for sizing in sizings for warning in sizing.warnings],
    )
