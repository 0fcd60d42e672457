"""Where price-model training runs, read from ``SN46_*`` variables when a training run starts.

One image serves every deployment, so the launcher (this process, a GPU pod,
an ECS task) and its cluster details are variables, not code. They are read
when training starts rather than when Dagster loads the definitions: a code
location must load (and ``dagster definitions validate`` pass) on a machine
with none of them set and no cluster in reach. Each field declares its
variable, default and validation with :func:`~sn46_pipelines.config.env_field`,
like every settings tree of the project, and a bad value stops the run with the
variable's name, what was expected and where the value came from, because
"invalid config" alone sends an operator hunting.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidatorFunctionWrapHandler,
    WrapValidator,
)

from ..config import (
    CommaList,
    ConfigError,
    Origins,
    SettingsModel,
    describe,
    env_field,
    read_variables,
    variables,
)

Launcher = Literal["subprocess", "k8s", "ecs"]
LAUNCHERS: tuple[Launcher, ...] = get_args(Launcher)

#: Where GPU nodes usually sit: NVIDIA's GPU feature discovery labels them, and GPU node pools
#: (EKS, GKE) taint them so that only pods that tolerate the taint land there.
GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}
GPU_TOLERATIONS = ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},)


def _expecting(what: str) -> WrapValidator:
    """Say what a value must be in the words docs/scale-out.md uses, instead of pydantic's."""

    def validate(value: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(f"expected {what}") from None

    return WrapValidator(validate)


def _lowercase(value: object) -> object:
    return value.strip().lower() if isinstance(value, str) else value


def _labels(value: object) -> object:
    if not isinstance(value, str):
        return value
    labels = {}
    for pair in value.split(","):
        if not pair.strip():
            continue
        key, sep, label = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError("expected comma-separated key=value pairs, e.g. nvidia.com/gpu.present=true")
        labels[key.strip()] = label.strip()
    return labels


def _tolerations(value: object) -> object:
    if not isinstance(value, str):
        return value
    try:
        parsed = json.loads(value) if value.strip() else []
    except json.JSONDecodeError:
        raise ValueError(
            'expected a JSON list of tolerations, e.g. [{"key": "nvidia.com/gpu", '
            '"operator": "Exists", "effect": "NoSchedule"}]'
        ) from None
    if not isinstance(parsed, list) or not all(isinstance(item, dict) for item in parsed):
        raise ValueError("expected a JSON list of toleration objects")
    return tuple(parsed)


_Count = Annotated[int, Field(ge=0), _expecting("a whole number (0 or more)")]
_Positive = Annotated[float, Field(gt=0), _expecting("a positive number")]


class LaunchSettings(SettingsModel):
    """How and where one training run is launched. Build it with :func:`resolve_launch_settings`."""

    model_config = ConfigDict(str_strip_whitespace=True)

    launcher: Annotated[
        Launcher, BeforeValidator(_lowercase), _expecting(f"one of {', '.join(LAUNCHERS)}")
    ] = env_field("SN46_TRAINING_LAUNCHER", "subprocess")
    """``subprocess`` (a child of the Dagster run process; the default), ``k8s`` or ``ecs``."""
    image: str = env_field("SN46_IMAGE", "")
    """Image with this package (and a CUDA build of torch for GPUs); needed by k8s and ecs."""
    gpu_count: _Count = env_field("SN46_GPU_COUNT", 1)
    """GPUs of the training pod or task; 0 trains on CPUs."""
    cpu: _Positive = env_field("SN46_TRAINING_CPU", 3.0)
    """vCPUs of the training container (a 4-vCPU GPU node keeps one for the system)."""
    memory_gib: _Positive = env_field("SN46_TRAINING_MEMORY_GIB", 12.0)
    """Memory of the training container, GiB."""

    k8s_namespace: str = env_field("SN46_K8S_NAMESPACE", "")
    """Namespace of the training pod; empty: the namespace Dagster runs in."""
    k8s_node_selector: Annotated[dict[str, str] | None, BeforeValidator(_labels)] = env_field(
        "SN46_K8S_NODE_SELECTOR", None
    )
    """Node labels (``key=value,...``); unset: ``nvidia.com/gpu.present=true`` when GPUs are requested."""
    k8s_tolerations: Annotated[tuple[dict[str, Any], ...] | None, BeforeValidator(_tolerations)] = env_field(
        "SN46_K8S_TOLERATIONS", None
    )
    """JSON list of tolerations; unset: tolerate the ``nvidia.com/gpu`` taint when GPUs are requested."""
    k8s_service_account: str = env_field("SN46_K8S_SERVICE_ACCOUNT", "")
    """Service account of the training pod, e.g. one bound to an IAM role (IRSA) for S3."""
    k8s_secret: str = env_field("SN46_K8S_SECRET", "sn46-object-store")
    """Kubernetes Secret holding ``aws_access_key_id`` and ``aws_secret_access_key``; empty: none
    (the service account's role gives S3 access)."""

    ecs_cluster: str = env_field("SN46_ECS_CLUSTER", "")
    """ECS cluster with GPU (EC2) capacity; Fargate has no GPUs."""
    ecs_task_family: str = env_field("SN46_ECS_TASK_DEFINITION", "sn46-train")
    """Task definition family that training keeps registered (a new revision only when it changes)."""
    ecs_subnets: CommaList = env_field("SN46_ECS_SUBNETS", ())
    """Comma-separated subnet ids of the task (awsvpc networking)."""
    ecs_security_groups: CommaList = env_field("SN46_ECS_SECURITY_GROUPS", ())
    """Comma-separated security group ids; none: the VPC's default group."""
    ecs_capacity_provider: str = env_field("SN46_ECS_CAPACITY_PROVIDER", "")
    """Capacity provider of the GPU Auto Scaling group; empty: launch type EC2 on registered instances."""
    ecs_execution_role_arn: str = env_field("SN46_ECS_EXECUTION_ROLE_ARN", "")
    """Role ECS itself uses to pull the image, write the logs and read the secret."""
    ecs_task_role_arn: str = env_field("SN46_ECS_TASK_ROLE_ARN", "")
    """Role of the training process (read the data store, write the model store)."""
    ecs_log_group: str = env_field("SN46_ECS_LOG_GROUP", "/ecs/sn46-train")
    """CloudWatch log group of the task; Dagster reads the Pipes messages from it."""
    ecs_secret: str = env_field("SN46_ECS_SECRET", "sn46/{env}/object-store")
    """Secrets Manager id of the object-store keys (``{env}``: the environment); empty: none
    (the task role gives S3 access)."""

    @property
    def node_selector(self) -> dict[str, str]:
        """The configured node selector, else the GPU nodes' label when GPUs are requested."""
        if self.k8s_node_selector is not None:
            return dict(self.k8s_node_selector)
        return dict(GPU_NODE_SELECTOR) if self.gpu_count else {}

    @property
    def tolerations(self) -> list[dict[str, Any]]:
        """The configured tolerations, else the GPU taint's when GPUs are requested."""
        if self.k8s_tolerations is not None:
            return [dict(item) for item in self.k8s_tolerations]
        return [dict(item) for item in GPU_TOLERATIONS] if self.gpu_count else []

    def ecs_secret_id(self, env: str) -> str:
        """The Secrets Manager id of the object-store keys in environment ``env`` (empty: none)."""
        return self.ecs_secret.replace("{env}", env)

    def require(self, *names: str) -> None:
        """Fail with the variables that the chosen launcher needs and that are unset."""
        missing = [VARIABLES[name] for name in names if not getattr(self, name)]
        if missing:
            raise ConfigError(
                f"training launcher {self.launcher!r} needs {', '.join(missing)} (see docs/scale-out.md)"
            )


_FIELDS = variables(LaunchSettings)
#: Each setting's variable, e.g. ``VARIABLES["gpu_count"] == "SN46_GPU_COUNT"``.
VARIABLES: dict[str, str] = {name: variable.name for name, variable in _FIELDS.items()}


def resolve_launch_settings(given: Mapping[str, str], environ: Mapping[str, str]) -> LaunchSettings:
    """Settings from ``given`` (explicit values by field name), else ``environ``, else the defaults.

    A variable that is set but empty counts as set: ``SN46_K8S_SECRET=`` means
    "no secret", not "the default secret".
    """
    unknown = sorted(set(given) - set(VARIABLES))
    if unknown:
        raise ConfigError(
            f"unknown training launcher setting(s) {', '.join(unknown)}; known: {', '.join(VARIABLES)}"
        )
    values: dict[str, Any] = read_variables(_FIELDS, environ, empty_is_set=True)
    sources = {name: _FIELDS[name].source for name in values}
    values.update(given)
    sources.update({name: f"training launcher setting {name}" for name in given})
    try:
        return LaunchSettings.model_validate(values)
    except ValidationError as exc:
        raise ConfigError(describe(exc, Origins(None, sources, _FIELDS))) from None
