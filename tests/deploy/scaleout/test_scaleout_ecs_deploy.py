"""deploy/ecs: the instance with EcsRunLauncher loads on real Postgres with its AWS clients on moto, and the
Fargate task definitions register on moto's ECS with health checks, logs and secrets by ARN only."""

import json
import re
import shutil
from pathlib import Path
from string import Template

import dagster as dg
import pytest
import yaml
from dagster_aws.ecs import EcsRunLauncher

from sn46_pipelines.defs.modelstore import GC_STORE_TAG
from sn46_pipelines.defs.training import GPU_TAG
from tests.deploy.scaleout.scaleout_world import REGION
from tests.support.paths import REPO

DEPLOY = REPO / "deploy"
TASK_DEFINITIONS = sorted((DEPLOY / "ecs" / "task-definitions").glob("*.json"))
#: Fargate's CPU units and the memory sizes (MiB) each allows.
FARGATE_SIZES = {
    256: {512, 1024, 2048},
    512: set(range(1024, 4097, 1024)),
    1024: set(range(2048, 8193, 1024)),
    2048: set(range(4096, 16385, 1024)),
    4096: set(range(8192, 30721, 1024)),
}
SECRET_LIKE = re.compile(r"PASSWORD|SECRET_ACCESS|REDIS_URL|TOKEN", re.IGNORECASE)


@pytest.fixture(scope="module")
def secret_arns(ecs_world) -> dict[str, str]:
    """Full ARNs of the environment's secrets on moto, with the JSON key ECS should read."""
    client = ecs_world.client("secretsmanager")
    arns = {}
    for name, key, value in [
        ("dagster-postgres", "password", "pg-secret-value"),
        ("redis", "url", "redis://x:6379/0"),
    ]:
        arn = client.create_secret(
            Name=f"sn46/{ecs_world.cluster}/{name}", SecretString=json.dumps({key: value})
        )["ARN"]
        arns[name] = f"{arn}:{key}::"
    return arns


def rendered(path: Path, secret_arns: dict[str, str], ecs_world) -> dict:
    """The file with its ${...} placeholders filled in, as `envsubst` does in docs/scale-out.md."""
    image = "123456789012.dkr.ecr.us-east-2.amazonaws.com/sn46-pipelines:2026.11.0"
    return json.loads(
        Template(path.read_text()).substitute(
            AWS_ACCOUNT_ID="123456789012",
            AWS_REGION=REGION,
            SN46_ENV="prod",
            SN46_IMAGE=image,
            SN46_CUDA_IMAGE=f"{image}-cuda",
            SN46_DAGSTER_IMAGE=image.replace("sn46-pipelines", "sn46-dagster"),
            DAGSTER_PG_HOST="sn46-dagster.example.rds.amazonaws.com",
            DAGSTER_COMPUTE_LOGS_BUCKET="sn46-logs",
            SN46_DAGSTER_PG_PASSWORD_SECRET_ARN=secret_arns["dagster-postgres"],
            SN46_REDIS_SECRET_ARN=secret_arns["redis"],
            SN46_ECS_CLUSTER=ecs_world.cluster,
            SN46_ECS_SUBNETS=ecs_world.subnet,
            SN46_ECS_SECURITY_GROUPS=ecs_world.security_group,
        )
    )


@pytest.mark.parametrize("path", TASK_DEFINITIONS, ids=lambda p: p.stem)
def test_fargate_task_definition_registers_with_health_checks_logs_and_secret_arns(
    path, secret_arns, ecs_world
):
    ecs, secrets = ecs_world.client("ecs"), ecs_world.client("secretsmanager")
    arn = ecs.register_task_definition(**rendered(path, secret_arns, ecs_world))["taskDefinition"][
        "taskDefinitionArn"
    ]
    described = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"]
    assert described["requiresCompatibilities"] == ["FARGATE"] and described["networkMode"] == "awsvpc"
    assert int(described["memory"]) in FARGATE_SIZES[int(described["cpu"])]
    for container in described["containerDefinitions"]:
        assert container["healthCheck"]["command"][:3] == ["CMD", "sn46-entrypoint", "health"]
        assert container["logConfiguration"]["logDriver"] == "awslogs"
        # A secret's ARN may be a plain variable (the run launcher passes it on); its value never is.
        assert not [
            e["name"]
            for e in container.get("environment", [])
            if SECRET_LIKE.search(e["name"]) and not e["value"].startswith("arn:aws:secretsmanager:")
        ]
        for secret in container.get("secrets", []):
            secret_arn, key = secret["valueFrom"].rsplit(":", 3)[:2]
            assert key in json.loads(secrets.get_secret_value(SecretId=secret_arn)["SecretString"])


def test_the_daemon_task_sets_every_variable_the_run_launcher_passes_on(secret_arns, ecs_world):
    instance = yaml.safe_load((DEPLOY / "ecs" / "dagster.yaml").read_text())
    passed_on = set(instance["run_launcher"]["config"]["env_vars"])
    services = rendered(DEPLOY / "ecs" / "task-definitions" / "dagster.json", secret_arns, ecs_world)
    (daemon,) = [c for c in services["containerDefinitions"] if c["name"] == "daemon"]
    assert passed_on <= {e["name"] for e in daemon["environment"]}


def test_ecs_instance_is_the_production_instance_but_for_the_run_launcher():
    prod_path = DEPLOY / "dagster.prod.yaml"
    if not prod_path.exists():
        pytest.skip("deploy/dagster.prod.yaml is not in this checkout")
    ecs, prod = (yaml.safe_load(path.read_text()) for path in (DEPLOY / "ecs" / "dagster.yaml", prod_path))
    assert ecs["run_launcher"]["class"] == "EcsRunLauncher"
    assert {k: v for k, v in ecs.items() if k != "run_launcher"} == {
        k: v for k, v in prod.items() if k != "run_launcher"
    }


def test_ecs_instance_loads_on_postgres_with_its_launcher_and_run_queue(
    tmp_path, monkeypatch, dagster_pg_env, s3_bucket, secret_arns, ecs_world
):
    for name, value in {
        **dagster_pg_env,
        "DAGSTER_HOME": str(tmp_path),
        "DAGSTER_COMPUTE_LOGS_BUCKET": s3_bucket,
        "AWS_REGION": REGION,
        "AWS_DEFAULT_REGION": REGION,
        "SN46_ECS_EXECUTION_ROLE_ARN": ecs_world.execution_role_arn,
        "SN46_ECS_RUN_TASK_ROLE_ARN": ecs_world.task_role_arn,
        "SN46_DAGSTER_PG_PASSWORD_SECRET_ARN": secret_arns["dagster-postgres"],
    }.items():
        monkeypatch.setenv(name, value)
    shutil.copy(DEPLOY / "ecs" / "dagster.yaml", tmp_path / "dagster.yaml")
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        launcher = instance.run_launcher
        assert isinstance(launcher, EcsRunLauncher)
        assert launcher.secrets == [
            {"name": "DAGSTER_PG_PASSWORD", "valueFrom": secret_arns["dagster-postgres"]}
        ]
        assert launcher.secrets_tags == [] and launcher.container_name == "run"
        assert launcher.task_role_arn == ecs_world.task_role_arn
        assert launcher.ecs.meta.region_name == REGION
        queue = instance.get_concurrency_config().run_queue_config
        limits = {limit["key"]: limit for limit in queue.tag_concurrency_limits}
        assert limits[GC_STORE_TAG]["limit"] == 1 and limits[GPU_TAG]["limit"] == 1
        assert instance.get_runs() == []  # the run storage answers from Postgres
