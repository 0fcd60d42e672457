"""The training task definition and run-task parameters, registered and run on moto's ECS over HTTP."""

import json

import pytest

from sn46_pipelines.config import ConfigError
from sn46_pipelines.deploy import resolve_launch_settings
from sn46_pipelines.deploy.ecs import (
    ensure_task_definition,
    secret_arn,
    training_run_task_params,
    training_task_definition,
)
from sn46_pipelines.deploy.training import container_environment
from tests.deploy.scaleout.scaleout_world import REGION, SECRET_VALUES


def register(world, environ):
    settings = resolve_launch_settings({}, environ)
    environment = container_environment("prod", REGION, None, injected_credentials=True)
    arn = secret_arn(world.client("secretsmanager"), settings.ecs_secret_id("prod"))
    definition = training_task_definition(settings, environment, region=REGION, secret_arn=arn)
    return settings, ensure_task_definition(world.client("ecs"), definition)


def test_gpu_task_definition_round_trips_with_secret_references_only(ecs_world):
    settings, arn = register(ecs_world, ecs_world.launcher_environ(SN46_GPU_COUNT="1"))
    described = ecs_world.client("ecs").describe_task_definition(taskDefinition=arn)["taskDefinition"]
    assert described["requiresCompatibilities"] == ["EC2"] and described["networkMode"] == "awsvpc"
    assert described["executionRoleArn"] == ecs_world.execution_role_arn
    assert described["taskRoleArn"] == ecs_world.task_role_arn
    (container,) = described["containerDefinitions"]
    assert container["image"] == settings.image
    assert container["command"] == ["python", "-m", "sn46_pipelines.pricemodel.pipes_train"]
    assert container["resourceRequirements"] == [{"type": "GPU", "value": "1"}]
    assert {e["name"]: e["value"] for e in container["environment"]} == {
        "SN46_ENV": "prod",
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "SN46_SECRETS_SOURCE": "env",
    }
    assert container["secrets"] == [
        {"name": "AWS_ACCESS_KEY_ID", "valueFrom": f"{ecs_world.secret_arn}:aws_access_key_id::"},
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": f"{ecs_world.secret_arn}:aws_secret_access_key::"},
    ]
    assert container["logConfiguration"] == {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": ecs_world.log_group,
            "awslogs-region": REGION,
            "awslogs-stream-prefix": "sn46",
        },
    }
    text = json.dumps(described, default=str)
    assert not any(value in text for value in SECRET_VALUES.values())


def test_unchanged_definition_is_reused_and_a_change_adds_a_revision(ecs_world):
    family = {"SN46_ECS_TASK_DEFINITION": "sn46-train-revisions"}
    _, first = register(ecs_world, ecs_world.launcher_environ(**family))
    _, again = register(ecs_world, ecs_world.launcher_environ(**family))
    _, newer = register(
        ecs_world, ecs_world.launcher_environ(**family, SN46_IMAGE="registry.example/sn46:next")
    )
    assert again == first and first.endswith(":1") and newer.endswith(":2")


def test_run_task_params_start_a_task_on_the_gpu_cluster(ecs_world):
    settings, arn = register(ecs_world, ecs_world.launcher_environ())
    params = training_run_task_params(settings, arn, env="prod")
    assert params["launchType"] == "EC2" and "assignPublicIp" not in json.dumps(params)
    ecs = ecs_world.client("ecs")
    (task,) = ecs.run_task(**params)["tasks"]
    (described,) = ecs.describe_tasks(cluster=ecs_world.cluster, tasks=[task["taskArn"]], include=["TAGS"])[
        "tasks"
    ]
    assert described["taskDefinitionArn"] == arn and described["launchType"] == "EC2"
    assert (
        described["startedBy"] == "sn46-dagster" and {"key": "sn46/env", "value": "prod"} in described["tags"]
    )
    (attachment,) = described["attachments"]
    assert {"name": "subnetId", "value": ecs_world.subnet} in attachment["details"]


def test_capacity_provider_and_cpu_only_variants():
    gpu = resolve_launch_settings(
        {}, {"SN46_ECS_CAPACITY_PROVIDER": "sn46-gpu-asg", "SN46_ECS_SUBNETS": "subnet-a"}
    )
    params = training_run_task_params(gpu, "arn:td", env="prod")
    assert params["capacityProviderStrategy"] == [{"capacityProvider": "sn46-gpu-asg", "weight": 1}]
    assert "launchType" not in params
    cpu = resolve_launch_settings({}, {"SN46_GPU_COUNT": "0", "SN46_ECS_SUBNETS": "subnet-a"})
    assert training_run_task_params(cpu, "arn:td", env="prod")["launchType"] == "FARGATE"
    definition = training_task_definition(cpu, {}, region=REGION, secret_arn=None)
    assert definition["requiresCompatibilities"] == ["FARGATE"]
    assert "resourceRequirements" not in definition["containerDefinitions"][0]
    assert "secrets" not in definition["containerDefinitions"][0]


def test_missing_secret_is_a_clear_error(ecs_world):
    with pytest.raises(ConfigError, match="no secret 'sn46/nowhere/object-store' \\(SN46_ECS_SECRET\\)"):
        secret_arn(ecs_world.client("secretsmanager"), "sn46/nowhere/object-store")
