"""The ECS task that trains the price model: its task definition and ``run_task`` parameters.

Fargate has no GPUs, so a GPU task definition is EC2-only and runs on a
cluster with GPU instances (an Auto Scaling group behind a capacity
provider, or registered instances). Credentials are ``secrets`` whose
``valueFrom`` is a Secrets Manager ARN: ECS fetches them when the container
starts, with the execution role, and no value is ever in the definition.

The two builders are pure; :func:`ensure_task_definition` and
:func:`secret_arn` are the two AWS calls training makes before the task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from ..config import ConfigError
from .settings import VARIABLES, LaunchSettings
from .training import CONTAINER_NAME, CREDENTIAL_KEYS, TRAIN_COMMAND

#: Prefix of the CloudWatch log streams: ``<prefix>/<container>/<task id>``.
LOG_STREAM_PREFIX = "sn46"


def training_task_definition(
    settings: LaunchSettings, environment: Mapping[str, str], *, region: str, secret_arn: str | None
) -> dict[str, Any]:
    """``register_task_definition`` arguments for the training container.

    ``secret_arn`` is the Secrets Manager secret holding the object-store
    keys (its JSON keys are :data:`.training.CREDENTIAL_KEYS`'s values), or
    ``None`` when the task role alone gives S3 access.
    """
    cpu_units, memory_mib = round(settings.cpu * 1024), round(settings.memory_gib * 1024)
    container: dict[str, Any] = {
        "name": CONTAINER_NAME,
        "image": settings.image,
        "essential": True,
        "command": list(TRAIN_COMMAND),
        "cpu": cpu_units,
        "memory": memory_mib,
        "environment": [{"name": name, "value": value} for name, value in sorted(environment.items())],
        "logConfiguration": {
            "logDriver": "awslogs",
            "options": {
                "awslogs-group": settings.ecs_log_group,
                "awslogs-region": region,
                "awslogs-stream-prefix": LOG_STREAM_PREFIX,
            },
        },
    }
    if secret_arn:
        container["secrets"] = [
            {"name": variable, "valueFrom": f"{secret_arn}:{key}::"}
            for variable, key in CREDENTIAL_KEYS.items()
        ]
    if settings.gpu_count:
        container["resourceRequirements"] = [{"type": "GPU", "value": str(settings.gpu_count)}]
    definition: dict[str, Any] = {
        "family": settings.ecs_task_family,
        "requiresCompatibilities": ["EC2"] if settings.gpu_count else ["FARGATE"],
        "networkMode": "awsvpc",
        "cpu": str(cpu_units),
        "memory": str(memory_mib),
        "containerDefinitions": [container],
        "executionRoleArn": settings.ecs_execution_role_arn,
    }
    if settings.ecs_task_role_arn:
        definition["taskRoleArn"] = settings.ecs_task_role_arn
    return definition


def training_run_task_params(
    settings: LaunchSettings, task_definition_arn: str, *, env: str
) -> dict[str, Any]:
    """``run_task`` arguments for one training task (``PipesECSClient`` adds its variables and tags)."""
    network: dict[str, Any] = {"subnets": list(settings.ecs_subnets)}
    if settings.ecs_security_groups:
        network["securityGroups"] = list(settings.ecs_security_groups)
    params: dict[str, Any] = {
        "cluster": settings.ecs_cluster,
        "taskDefinition": task_definition_arn,
        "count": 1,
        "startedBy": "sn46-dagster",
        "networkConfiguration": {"awsvpcConfiguration": network},
        "tags": [{"key": "sn46/env", "value": env}],
    }
    if settings.ecs_capacity_provider:
        params["capacityProviderStrategy"] = [
            {"capacityProvider": settings.ecs_capacity_provider, "weight": 1}
        ]
    elif settings.gpu_count:
        params["launchType"] = "EC2"
    else:
        params["launchType"] = "FARGATE"
        network["assignPublicIp"] = "DISABLED"
    return params


def secret_arn(secretsmanager: Any, secret_id: str) -> str:
    """The full ARN of ``secret_id`` (ECS wants ARNs in ``valueFrom``), or a clear error if it is missing."""
    try:
        return secretsmanager.describe_secret(SecretId=secret_id)["ARN"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":
            raise
        raise ConfigError(
            f"Secrets Manager has no secret {secret_id!r} ({VARIABLES['ecs_secret']}): create it with "
            f"the keys {', '.join(CREDENTIAL_KEYS.values())}, or set {VARIABLES['ecs_secret']} empty "
            "to use the task role"
        ) from None


def ensure_task_definition(ecs: Any, definition: Mapping[str, Any]) -> str:
    """The ARN of the family's latest revision if it already says ``definition``, else of a new one.

    Registering on every run would add a revision per training run; comparing
    first keeps one revision per actual change (image, GPUs, roles...).
    """
    try:
        latest = ecs.describe_task_definition(taskDefinition=definition["family"])["taskDefinition"]
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("ClientException", "ResourceNotFoundException"):
            raise
        latest = None
    if latest is not None and latest.get("status") == "ACTIVE" and _says(latest, definition):
        return latest["taskDefinitionArn"]
    return ecs.register_task_definition(**definition)["taskDefinition"]["taskDefinitionArn"]


def _says(registered: Any, wanted: Any) -> bool:
    """Whether ``registered`` (as ECS describes it, defaults filled in) has every value of ``wanted``."""
    if isinstance(wanted, Mapping):
        return isinstance(registered, Mapping) and all(
            key in registered and _says(registered[key], value) for key, value in wanted.items()
        )
    if isinstance(wanted, list):
        return (
            isinstance(registered, list)
            and len(registered) == len(wanted)
            and all(_says(r, w) for r, w in zip(registered, wanted))
        )
    return registered == wanted
