"""Where price-model training runs, read from ``SN46_*`` variables when a training run starts.

One image serves every deployment, so the launcher (this process, a GPU pod,
an ECS task) and its cluster details are variables, not code. They are read
when training starts rather than when Dagster loads the definitions: a code
location must load (and ``dagster definitions validate`` pass) on a machine
with none of them set and no cluster in reach. A bad value stops the run with
the variable's name and what was expected, because "invalid config" alone
sends an operator hunting.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from ..config import ConfigError

LAUNCHERS = ("subprocess", "k8s", "ecs")

#: Where GPU nodes usually sit: NVIDIA's GPU feature discovery labels them, and GPU node pools
#: (EKS, GKE) taint them so that only pods that tolerate the taint land there.
GPU_NODE_SELECTOR = {"nvidia.com/gpu.present": "true"}
GPU_TOLERATIONS = ({"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},)


def _text(value: str) -> str:
    return value.strip()


def _launcher(value: str) -> str:
    value = value.strip().lower()
    if value not in LAUNCHERS:
        raise ValueError(f"expected one of {', '.join(LAUNCHERS)}")
    return value


def _count(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise ValueError("expected a whole number (0 or more)") from None
    if number < 0:
        raise ValueError("expected a whole number (0 or more)")
    return number


def _positive(value: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise ValueError("expected a positive number") from None
    if not number > 0:
        raise ValueError("expected a positive number")
    return number


def _names(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _labels(value: str) -> dict[str, str]:
    labels = {}
    for pair in _names(value):
        key, sep, label = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError("expected comma-separated key=value pairs, e.g. nvidia.com/gpu.present=true")
        labels[key.strip()] = label.strip()
    return labels


def _tolerations(value: str) -> tuple[dict[str, Any], ...]:
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


def _setting(variable: str, default: Any, parse: Callable[[str], Any]) -> Any:
    """A field read from ``variable`` and converted by ``parse`` (which raises ``ValueError``)."""
    return field(default=default, metadata={"variable": variable, "parse": parse})


@dataclass(frozen=True)
class LaunchSettings:
    """How and where one training run is launched. Build it with :func:`resolve_launch_settings`."""

    launcher: str = _setting("SN46_TRAINING_LAUNCHER", "subprocess", _launcher)
    """``subprocess`` (a child of the Dagster run process; the default), ``k8s`` or ``ecs``."""
    image: str = _setting("SN46_IMAGE", "", _text)
    """Image with this package (and a CUDA build of torch for GPUs); needed by k8s and ecs."""
    gpu_count: int = _setting("SN46_GPU_COUNT", 1, _count)
    """GPUs of the training pod or task; 0 trains on CPUs."""
    cpu: float = _setting("SN46_TRAINING_CPU", 3.0, _positive)
    """vCPUs of the training container (a 4-vCPU GPU node keeps one for the system)."""
    memory_gib: float = _setting("SN46_TRAINING_MEMORY_GIB", 12.0, _positive)
    """Memory of the training container, GiB."""

    k8s_namespace: str = _setting("SN46_K8S_NAMESPACE", "", _text)
    """Namespace of the training pod; empty: the namespace Dagster runs in."""
    k8s_node_selector: dict[str, str] | None = _setting(  # noqa: RUF009 - it returns a field()
        "SN46_K8S_NODE_SELECTOR", None, _labels
    )
    """Node labels (``key=value,...``); unset: ``nvidia.com/gpu.present=true`` when GPUs are requested."""
    k8s_tolerations: tuple[dict[str, Any], ...] | None = _setting("SN46_K8S_TOLERATIONS", None, _tolerations)
    """JSON list of tolerations; unset: tolerate the ``nvidia.com/gpu`` taint when GPUs are requested."""
    k8s_service_account: str = _setting("SN46_K8S_SERVICE_ACCOUNT", "", _text)
    """Service account of the training pod, e.g. one bound to an IAM role (IRSA) for S3."""
    k8s_secret: str = _setting("SN46_K8S_SECRET", "sn46-object-store", _text)
    """Kubernetes Secret holding ``aws_access_key_id`` and ``aws_secret_access_key``; empty: none
    (the service account's role gives S3 access)."""

    ecs_cluster: str = _setting("SN46_ECS_CLUSTER", "", _text)
    """ECS cluster with GPU (EC2) capacity; Fargate has no GPUs."""
    ecs_task_family: str = _setting("SN46_ECS_TASK_DEFINITION", "sn46-train", _text)
    """Task definition family that training keeps registered (a new revision only when it changes)."""
    ecs_subnets: tuple[str, ...] = _setting("SN46_ECS_SUBNETS", (), _names)
    """Comma-separated subnet ids of the task (awsvpc networking)."""
    ecs_security_groups: tuple[str, ...] = _setting("SN46_ECS_SECURITY_GROUPS", (), _names)
    """Comma-separated security group ids; none: the VPC's default group."""
    ecs_capacity_provider: str = _setting("SN46_ECS_CAPACITY_PROVIDER", "", _text)
    """Capacity provider of the GPU Auto Scaling group; empty: launch type EC2 on registered instances."""
    ecs_execution_role_arn: str = _setting("SN46_ECS_EXECUTION_ROLE_ARN", "", _text)
    """Role ECS itself uses to pull the image, write the logs and read the secret."""
    ecs_task_role_arn: str = _setting("SN46_ECS_TASK_ROLE_ARN", "", _text)
    """Role of the training process (read the data store, write the model store)."""
    ecs_log_group: str = _setting("SN46_ECS_LOG_GROUP", "/ecs/sn46-train", _text)
    """CloudWatch log group of the task; Dagster reads the Pipes messages from it."""
    ecs_secret: str = _setting("SN46_ECS_SECRET", "sn46/{env}/object-store", _text)
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


#: Each setting's variable, e.g. ``VARIABLES["gpu_count"] == "SN46_GPU_COUNT"``.
VARIABLES: dict[str, str] = {f.name: f.metadata["variable"] for f in fields(LaunchSettings)}


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
    values = {}
    for spec in fields(LaunchSettings):
        variable = spec.metadata["variable"]
        if spec.name in given:
            raw, source = given[spec.name], f"training launcher setting {spec.name}"
        elif variable in environ:
            raw, source = environ[variable], f"variable {variable}"
        else:
            continue
        try:
            values[spec.name] = spec.metadata["parse"](raw)
        except ValueError as exc:
            raise ConfigError(f"{variable}: {exc}, got {raw!r} [from {source}]") from None
    return LaunchSettings(**values)
