"""The strict description of every Helm value `serve k8s` writes for the vllm-stack chart (version in chart.py).

The chart's own values.schema.json has no `required` and allows any extra key, so a misspelt key passes
Helm and silently changes the deployment (`vllmConfig.maxModelLength` renders no --max-model-len, and vLLM
takes the checkpoint's 262,144 tokens; `requestGpu` renders a pod without a GPU). These models forbid
unknown keys, and each field says what the chart's templates make of it (read in templates/
deployment-vllm-multi.yaml, _helpers.tpl, deployment-router.yaml at the pinned commit). Values are only
ever written through ChartValues, so nothing outside this description can reach a values file.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from serve.k8s.chart import ENGINE_CONTAINER_PORT

# Object names the chart builds from release and model names end up in DNS labels (Service names,
# the pod hostname `<release>-<name>-vllm-stack`): lower-case letters, digits and '-', at most 63.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
Quantity = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti)$")]
# Helm 3 reads values numbers as float64 and `quote` prints 1,000,000 as "1e+06", which vLLM cannot parse.
BELOW_E_NOTATION = 1_000_000


class _Strict(BaseModel):
    """Unknown keys are errors, and keys are the chart's (camelCase) names."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)


class SecretRef(_Strict):
    """A key of an existing Kubernetes Secret; the chart turns it into a secretKeyRef env var. Both parts are
    required: with one of the two empty the chart emits no variable at all."""

    secret_name: str = Field(alias="secretName", min_length=1, description="Name of the Secret.")
    secret_key: str = Field(alias="secretKey", min_length=1, description="Key inside the Secret.")


class EnvVar(_Strict):
    """One entry of modelSpec.env, copied into the container as written."""

    name: str = Field(min_length=1, description="Variable name.")
    value: str = Field(description="Always a string: Kubernetes rejects numbers and booleans here.")


class VllmConfig(_Strict):
    """modelSpec.vllmConfig: the fields the chart turns into vLLM flags, in the order its template emits them
    (see `argv`), then extraArgs for every option it has no field for."""

    enable_chunked_prefill: bool | None = Field(
        None,
        alias="enableChunkedPrefill",
        description="Only when set: --enable-chunked-prefill / --no-enable-chunked-prefill.",
    )
    enable_prefix_caching: bool = Field(
        alias="enablePrefixCaching",
        description="true: --enable-prefix-caching; false AND absent: --no-enable-prefix-caching, which turns "
        "off vLLM's own default, so it is always written.",
    )
    max_model_len: int = Field(
        alias="maxModelLen",
        ge=1,
        lt=BELOW_E_NOTATION,
        description="--max-model-len; absent, vLLM takes the checkpoint's 262,144 tokens.",
    )
    dtype: str = Field(description="--dtype.")
    tensor_parallel_size: int = Field(
        alias="tensorParallelSize",
        ge=1,
        description="--tensor-parallel-size; its presence also mounts a memory-backed /dev/shm (shmSize).",
    )
    max_num_seqs: int | None = Field(
        None, alias="maxNumSeqs", ge=1, lt=BELOW_E_NOTATION, description="--max-num-seqs, when set."
    )
    gpu_memory_utilization: float = Field(
        alias="gpuMemoryUtilization",
        gt=0,
        le=1,
        description="--gpu_memory_utilization (vLLM takes underscores).",
    )
    extra_args: list[str] = Field(
        alias="extraArgs",
        description="Appended to the command as given, one quoted argv element each; strings only.",
    )

    def argv(self) -> list[str]:
        """The vLLM flags the chart renders from this block, in its order."""
        args: list[str] = []
        if self.enable_chunked_prefill is not None:
            args.append(
                "--enable-chunked-prefill" if self.enable_chunked_prefill else "--no-enable-chunked-prefill"
            )
        args.append("--enable-prefix-caching" if self.enable_prefix_caching else "--no-enable-prefix-caching")
        args += ["--max-model-len", str(self.max_model_len), "--dtype", self.dtype]
        args += ["--tensor-parallel-size", str(self.tensor_parallel_size)]
        if self.max_num_seqs is not None:
            args += ["--max-num-seqs", str(self.max_num_seqs)]
        args += ["--gpu_memory_utilization", go_number(self.gpu_memory_utilization), *self.extra_args]
        return args


def go_number(value: float) -> str:
    """A number as Helm's `quote` prints it: whole numbers without a decimal point, else the shortest form."""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


class NodeSelectorRequirement(_Strict):
    key: str = Field(min_length=1, description="Node label, e.g. nvidia.com/gpu.product.")
    operator: Literal["In"] = Field("In", description="The label's value must be one of `values`.")
    values: list[str] = Field(min_length=1, description="Accepted label values.")


class NodeSelectorTerm(_Strict):
    match_expressions: list[NodeSelectorRequirement] = Field(
        alias="matchExpressions", description="All must hold for a node to be chosen."
    )


class Keda(_Strict):
    """modelSpec.keda: a KEDA ScaledObject for this model's Deployment (KEDA must be installed). The chart's
    default trigger is Prometheus' vllm:num_requests_waiting{model="<name>"} over 5 waiting requests;
    `triggers` is not written: KEDA's list form fails the chart's schema (it declares an object)."""

    enabled: Literal[True] = Field(True, description="Renders the ScaledObject and drops `replicas`.")
    min_replica_count: int = Field(
        alias="minReplicaCount",
        ge=1,
        description="Fewest replicas. Not 0: the trigger reads the replicas' own metrics, so nothing would scale "
        "a model back up from zero.",
    )
    max_replica_count: int = Field(alias="maxReplicaCount", ge=1, description="Most replicas.")

    @model_validator(mode="after")
    def _ordered(self) -> Keda:
        if self.max_replica_count < self.min_replica_count:
            raise ValueError(
                f"maxReplicaCount {self.max_replica_count} is below minReplicaCount {self.min_replica_count}"
            )
        return self


class ModelSpec(_Strict):
    """One entry of servingEngineSpec.modelSpec: a Deployment `<release>-<name>-deployment-vllm`, a Service
    `<release>-<name>-engine-service` and a PVC `<release>-<name>-storage-claim`."""

    name: str = Field(
        max_length=40,
        pattern=DNS_LABEL.pattern,
        description="The pod label `model` and part of every object name and the pod hostname; the served name, "
        'so the KEDA default trigger\'s model="<name>" matches the metrics.',
    )
    repository: str = Field(min_length=1, description="Image repository (`required` in the template).")
    tag: str = Field(min_length=1, description="Image tag (`required` in the template).")
    model_url: str = Field(
        alias="modelURL", min_length=1, description="`vllm serve <modelURL>`: the checkpoint."
    )
    replica_count: int | None = Field(
        None,
        alias="replicaCount",
        ge=0,
        description="Deployment replicas; ignored (not rendered) when keda is on.",
    )
    request_cpu: int = Field(
        alias="requestCPU", ge=1, description="CPU request (the schema wants an integer)."
    )
    request_memory: Quantity = Field(alias="requestMemory", description="Memory request, e.g. 24Gi.")
    limit_memory: Quantity = Field(
        alias="limitMemory", description="Memory limit; with it the pod gets limits too."
    )
    request_gpu: int = Field(
        alias="requestGPU",
        ge=1,
        description="nvidia.com/gpu request = limit; 0 or absent renders no GPU at all.",
    )
    pvc_storage: Quantity = Field(
        alias="pvcStorage", description="A PVC of this size mounted at /data, and HF_HOME=/data (else /tmp)."
    )
    storage_class: str | None = Field(
        None, alias="storageClass", description="PVC storageClassName, when set."
    )
    vllm_config: VllmConfig = Field(alias="vllmConfig", description="vLLM's flags (see VllmConfig).")
    hf_token: SecretRef | None = Field(
        None,
        description="HF_TOKEN from this Secret key. A string here would be stored in plain text in the values.",
    )
    env: list[EnvVar] = Field(description="Extra container environment, after the chart's own variables.")
    node_selector_terms: list[NodeSelectorTerm] | None = Field(
        None, alias="nodeSelectorTerms", description="Required node affinity (e.g. one GPU product)."
    )
    keda: Keda | None = Field(None, description="Autoscaling on the queue length (see Keda).")

    def command(self) -> list[str]:
        """The container command the chart renders for this entry (repository vllm/vllm-openai)."""
        port = str(ENGINE_CONTAINER_PORT)
        return [
            "vllm",
            "serve",
            self.model_url,
            "--host",
            "0.0.0.0",
            "--port",
            port,
            *self.vllm_config.argv(),
        ]


class HttpGet(_Strict):
    path: str = Field(description="Probe path.")
    port: int = Field(description="Container port.")


class StartupProbe(_Strict):
    """servingEngineSpec.startupProbe; the chart's default (15 s + 60 x 10 s, then a restart) is shorter than a
    first download of the weights, which would restart the pod in a loop."""

    initial_delay_seconds: int = Field(
        alias="initialDelaySeconds", ge=0, description="Before the first probe."
    )
    period_seconds: int = Field(alias="periodSeconds", ge=1, description="Between probes.")
    failure_threshold: int = Field(alias="failureThreshold", ge=1, description="Failures before a restart.")
    http_get: HttpGet = Field(alias="httpGet", description="vLLM's /health.")


class RollingUpdate(_Strict):
    max_surge: int = Field(
        alias="maxSurge", ge=0, description="Extra pods during an update (each needs a GPU)."
    )
    max_unavailable: int = Field(alias="maxUnavailable", ge=0, description="Pods that may be down at once.")


class Strategy(_Strict):
    """servingEngineSpec.strategy, for every model. The chart's default (maxSurge 100%) needs a spare GPU per
    replica during an update."""

    type: Literal["RollingUpdate"] = Field("RollingUpdate", description="Deployment strategy type.")
    rolling_update: RollingUpdate = Field(alias="rollingUpdate", description="One pod at a time.")


class RelabelConfig(_Strict):
    """A Prometheus metric relabelling: copy one label's value into another."""

    source_labels: list[str] = Field(alias="sourceLabels", description="Labels read.")
    target_label: str = Field(alias="targetLabel", description="Label written.")
    action: Literal["replace"] = Field("replace", description="Prometheus relabel action.")


class ServiceMonitor(_Strict):
    """servingEngineSpec.serviceMonitor (Prometheus Operator). vLLM 0.32 labels its metrics model_name, the
    chart's KEDA trigger asks for model: the relabelling copies one into the other."""

    enabled: Literal[True] = Field(True, description="Renders the ServiceMonitor.")
    metric_relabelings: list[RelabelConfig] = Field(
        alias="metricRelabelings", description="Applied per sample."
    )


class ServingEngineSpec(_Strict):
    labels: dict[str, str] = Field(
        description="Labels of every engine pod, and the router's discovery selector. The chart's default is the "
        "same in every release (environment/release: test), so two releases in one namespace would route to "
        "each other's pods; Helm merges maps, so both default keys are overridden."
    )
    vllm_api_key: SecretRef | None = Field(
        None,
        alias="vllmApiKey",
        description="VLLM_API_KEY of every engine (and of the router's own calls) from this Secret key.",
    )
    image_pull_policy: Literal["IfNotPresent", "Always"] = Field(
        alias="imagePullPolicy", description="The chart's Always pulls the ~10 GB vLLM image at every start."
    )
    runtime_class_name: str = Field(
        alias="runtimeClassName",
        description="Pod runtimeClassName (the GPU operator's is `nvidia`); '' = none.",
    )
    strategy: Strategy = Field(description="How a Deployment is updated (see Strategy).")
    startup_probe: StartupProbe = Field(alias="startupProbe", description="See StartupProbe.")
    service_monitor: ServiceMonitor | None = Field(
        None, alias="serviceMonitor", description="See ServiceMonitor."
    )
    model_spec: list[ModelSpec] = Field(alias="modelSpec", min_length=1, description="One entry per profile.")

    @model_validator(mode="after")
    def _unique_names(self) -> ServingEngineSpec:
        names = [spec.name for spec in self.model_spec]
        if len(set(names)) != len(names):
            raise ValueError(f"modelSpec names must be unique (they name Deployments): {', '.join(names)}")
        return self


class RouterSpec(_Strict):
    repository: str = Field(min_length=1, description="Router image repository.")
    tag: str = Field(min_length=1, description="Router image tag; pinned to the chart version, not latest.")
    image_pull_policy: Literal["IfNotPresent", "Always"] = Field(
        alias="imagePullPolicy", description="As above."
    )
    routing_logic: Literal["roundrobin", "session", "prefixaware"] = Field(
        alias="routingLogic", description="--routing-logic; which replica of a model gets a request."
    )
    session_key: str | None = Field(
        None,
        alias="sessionKey",
        min_length=1,
        description="--session-key: the header (or body field) hashed onto a ring of the model's replicas; the "
        "router exits at start without one under session routing.",
    )

    @model_validator(mode="after")
    def _session_needs_key(self) -> RouterSpec:
        if self.routing_logic == "session" and not self.session_key:
            raise ValueError("routingLogic session needs sessionKey (the router exits at start without one)")
        return self


class ChartValues(_Strict):
    """The whole values file `serve k8s` writes."""

    serving_engine_spec: ServingEngineSpec = Field(alias="servingEngineSpec", description="The vLLM pods.")
    router_spec: RouterSpec = Field(alias="routerSpec", description="The router in front of them.")

    def to_values(self) -> dict[str, Any]:
        """Plain data for YAML, chart key names, nothing unset; checked again against this description, so
        what is written is exactly what it allows."""
        values = json.loads(self.model_dump_json(by_alias=True, exclude_none=True))
        ChartValues.model_validate(values)
        return values
