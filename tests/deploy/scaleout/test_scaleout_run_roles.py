"""GC and replication runs take their own cloud roles: the tags that ECS and Kubernetes run launchers read.

Under the run launcher's (pipeline) identity a GC run could not delete a blob and a replication repair
could not write the replica. The tags are checked where they take effect: read by dagster-aws's
EcsRunLauncher into a task override that moto's ECS keeps on the task it starts, and read by dagster-k8s
into the service account of the run's Job and of the op's step Job.
"""

import json
import os
import subprocess
import sys
from string import Template

import dagster as dg
import pytest
from dagster_aws.ecs import EcsRunLauncher
from dagster_aws.ecs.container_context import EcsContainerContext
from dagster_k8s.job import DagsterK8sJobConfig, construct_dagster_k8s_job, get_user_defined_k8s_config

from sn46_pipelines.config import ConfigError
from sn46_pipelines.definitions import defs as _defs
from sn46_pipelines.deploy.run_roles import (
    RUN_ROLES,
    ecs_role_variable,
    k8s_service_account_variable,
    k8s_step_role_tags,
    run_role_tags,
)
from sn46_pipelines.infra import build_policies
from tests.support.paths import REPO

gc_job = _defs.resolve_job_def("gc_job")


ACCOUNT = "123456789012"
ROLE_ENV = {
    "SN46_ECS_TASK_ROLE_ARN_GC": f"arn:aws:iam::{ACCOUNT}:role/sn46-gc",
    "SN46_ECS_TASK_ROLE_ARN_REPLICATION": f"arn:aws:iam::{ACCOUNT}:role/sn46-replication",
    "SN46_K8S_SERVICE_ACCOUNT_GC": "sn46-gc",
    "SN46_K8S_SERVICE_ACCOUNT_REPLICATION": "sn46-replication",
}
PIPELINE_ROLE = f"arn:aws:iam::{ACCOUNT}:role/sn46-pipeline"
CODE_LOCATION_TASK = REPO / "deploy" / "ecs" / "task-definitions" / "code-location.json"


def test_unset_variables_leave_runs_with_the_launchers_identity():
    for role in RUN_ROLES:
        assert run_role_tags(role, {}) == {} and k8s_step_role_tags(role, {}) == {}


def test_each_role_has_its_variables_and_they_become_the_launchers_tags():
    assert [ecs_role_variable(r) for r in RUN_ROLES] == [
        "SN46_ECS_TASK_ROLE_ARN_GC",
        "SN46_ECS_TASK_ROLE_ARN_REPLICATION",
    ]
    assert k8s_service_account_variable("gc") == "SN46_K8S_SERVICE_ACCOUNT_GC"
    tags = run_role_tags("gc", ROLE_ENV)
    assert json.loads(tags["ecs/task_overrides"]) == {"taskRoleArn": ROLE_ENV["SN46_ECS_TASK_ROLE_ARN_GC"]}
    step = {"pod_spec_config": {"service_account_name": "sn46-gc"}}
    assert json.loads(tags["dagster-k8s/config"]) == step
    assert k8s_step_role_tags("gc", ROLE_ENV) == {"dagster-k8s/config": tags["dagster-k8s/config"]}
    only_ecs = run_role_tags("replication", {"SN46_ECS_TASK_ROLE_ARN_REPLICATION": PIPELINE_ROLE})
    assert set(only_ecs) == {"ecs/task_overrides"}
    with pytest.raises(ValueError, match="unknown run role 'training'"):
        run_role_tags("training", ROLE_ENV)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SN46_ECS_TASK_ROLE_ARN_GC", "sn46-gc"),  # a name, not an ARN
        ("SN46_ECS_TASK_ROLE_ARN_GC", f"arn:aws:iam::{ACCOUNT}:user/sn46-gc"),  # a user cannot be a task role
        ("SN46_ECS_TASK_ROLE_ARN_REPLICATION", "arn:aws:iam::1234:role/sn46-replication"),
        ("SN46_K8S_SERVICE_ACCOUNT_GC", "SN46_GC"),
        ("SN46_K8S_SERVICE_ACCOUNT_REPLICATION", "sn46 replication"),
    ],
)
def test_a_malformed_value_is_named_with_what_was_expected(variable, value):
    role = variable.rsplit("_", 1)[1].lower()
    with pytest.raises(ConfigError, match=f"^{variable}: expected .*got '{value}'"):
        run_role_tags(role, {variable: value})


def _code_location(environ: dict[str, str]) -> subprocess.CompletedProcess:
    """The three model-store jobs' run and op tags as a fresh code location loads them."""
    script = (
        "import json\nfrom sn46_pipelines.definitions import defs\n"
        "print(json.dumps({name: {'run': dict(defs.resolve_job_def(name).tags),"
        " 'op': dict(next(iter(defs.resolve_job_def(name).nodes)).definition.tags)}"
        " for name in ('gc_job', 'replication_check_job', 'verify_chain_job')}))"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SN46_ECS_", "SN46_K8S_"))}
    return subprocess.run(
        [sys.executable, "-c", script], env={**env, **environ}, capture_output=True, text=True
    )


def test_the_code_location_tags_gc_and_replication_runs_and_their_steps():
    loaded = _code_location(ROLE_ENV)
    assert loaded.returncode == 0, loaded.stderr
    tags = json.loads(loaded.stdout)
    for job, role in (("gc_job", "gc"), ("replication_check_job", "replication")):
        assert tags[job]["run"].items() >= run_role_tags(role, ROLE_ENV).items()
        assert tags[job]["op"] == k8s_step_role_tags(role, ROLE_ENV)
    assert "sn46/gc-store" in tags["gc_job"]["run"]  # the run queue's key stays
    assert tags["verify_chain_job"] == {"run": {}, "op": {}}  # verify only reads: the pipeline role will do


def test_a_malformed_role_stops_the_code_location_with_the_variable_named():
    loaded = _code_location({**ROLE_ENV, "SN46_K8S_SERVICE_ACCOUNT_GC": "Not_A_Name"})
    assert loaded.returncode != 0 and "SN46_K8S_SERVICE_ACCOUNT_GC: expected" in loaded.stderr


def test_ecs_run_launcher_starts_a_gc_run_under_the_gc_role(ecs_world):
    """dagster-aws reads the run's tag into the task overrides; ECS starts the task with that role."""
    with dg.DagsterInstance.ephemeral() as instance:
        run = instance.create_run_for_job(gc_job, tags=run_role_tags("gc", ROLE_ENV))
    launcher = EcsRunLauncher(use_current_ecs_task_config=False)
    overrides = launcher._get_task_overrides(EcsContainerContext(), run)
    assert overrides == {"taskRoleArn": ROLE_ENV["SN46_ECS_TASK_ROLE_ARN_GC"]}

    ecs = ecs_world.client("ecs")
    # Runs are Fargate tasks (deploy/ecs/dagster.yaml); moto starts tasks only on its registered instance.
    definition = ecs.register_task_definition(
        family="sn46-run-roles",
        taskRoleArn=PIPELINE_ROLE,
        networkMode="awsvpc",
        requiresCompatibilities=["EC2"],
        containerDefinitions=[
            {"name": "run", "image": "sn46-pipelines", "essential": True, "cpu": 1024, "memory": 2048}
        ],
    )["taskDefinition"]["taskDefinitionArn"]
    (task,) = ecs.run_task(
        cluster=ecs_world.cluster,
        taskDefinition=definition,
        launchType="EC2",
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [ecs_world.subnet],
                "securityGroups": [ecs_world.security_group],
            }
        },
        overrides={
            "containerOverrides": [{"name": "run", "command": ["dagster", "api", "execute_run"]}],
            **overrides,
        },
    )["tasks"]
    (described,) = ecs.describe_tasks(cluster=ecs_world.cluster, tasks=[task["taskArn"]])["tasks"]
    assert described["overrides"]["taskRoleArn"] == ROLE_ENV["SN46_ECS_TASK_ROLE_ARN_GC"]


def test_the_ecs_code_location_names_the_gc_and_replication_roles():
    rendered = json.loads(Template(CODE_LOCATION_TASK.read_text()).safe_substitute(AWS_ACCOUNT_ID=ACCOUNT))
    (container,) = rendered["containerDefinitions"]
    environment = {item["name"]: item["value"] for item in container["environment"]}
    for role in RUN_ROLES:
        override = json.loads(run_role_tags(role, environment)["ecs/task_overrides"])
        assert override == {"taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/sn46-{role}"}


@pytest.mark.parametrize("source", ["run", "op"])
def test_kubernetes_run_and_step_jobs_get_the_roles_service_account(source):
    """K8sRunLauncher reads the job's tag for the run pod; k8s_job_executor reads the op's for a step pod."""
    tags = run_role_tags("gc", ROLE_ENV) if source == "run" else k8s_step_role_tags("gc", ROLE_ENV)
    launcher_config = DagsterK8sJobConfig(
        job_image="sn46-pipelines:2026.11.0",
        dagster_home="/opt/dagster/dagster_home",
        instance_config_map="dagster-instance",
        service_account_name="sn46-pipeline",
    )
    job = construct_dagster_k8s_job(
        launcher_config,
        ["dagster", "api", "execute_run"],
        "dagster-run-gc",
        get_user_defined_k8s_config(tags),
    )
    assert job.spec.template.spec.service_account_name == "sn46-gc"
    plain = construct_dagster_k8s_job(
        launcher_config, ["dagster"], "dagster-run-ingest", get_user_defined_k8s_config({})
    )
    assert plain.spec.template.spec.service_account_name == "sn46-pipeline"


def test_the_roles_dagster_runs_take_may_write_their_step_logs(monkeypatch):
    monkeypatch.setenv("SN46_ENV", "prod")
    from sn46_pipelines.config import load_settings

    policies = build_policies(
        load_settings(),
        roles=("pipeline", "gc", "replication", "inference"),
        compute_logs_bucket="sn46-dagster-logs",
    ).policies
    with_logs = {
        role for role, doc in policies.items() if any(s["Sid"] == "StepLogs" for s in doc["Statement"])
    }
    assert with_logs == {"pipeline", *RUN_ROLES}
