"""deploy/helm/values.yaml: keys the dagster/dagster chart knows, Kubernetes objects the API accepts, the
run queue's limits on the jobs' own tags, and a training pod that the values' variables produce."""

import kubernetes
import pytest
import yaml
from dagster._config import validate_config
from dagster_k8s import K8sRunLauncher
from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict
from dagster_k8s.pipes import build_pod_body

from sn46_pipelines.defs.modelstore import GC_STORE_TAG
from sn46_pipelines.defs.training import GPU_TAG
from sn46_pipelines.deploy import resolve_launch_settings
from sn46_pipelines.deploy.k8s import training_pod_metadata, training_pod_spec
from sn46_pipelines.deploy.training import container_environment
from tests.support.paths import REPO

VALUES = REPO / "deploy" / "helm" / "values.yaml"

# Keys of the chart's values schema (helm/dagster/schema in the dagster repository, 1.13) for every
# section these values set; a key outside them would be ignored by the chart without a word.
CHART_KEYS = {
    "": {
        "dagsterWebserver",
        "dagster-user-deployments",
        "postgresql",
        "generatePostgresqlPasswordSecret",
        "generateCeleryConfigSecret",
        "rabbitmq",
        "redis",
        "flower",
        "ingress",
        "imagePullSecrets",
        "computeLogManager",
        "scheduler",
        "runLauncher",
        "pythonLogs",
        "dagsterDaemon",
        "busybox",
        "migrate",
        "telemetry",
        "serviceAccount",
        "global",
        "retention",
        "additionalInstanceConfig",
        "concurrency",
    },
    "global": {
        "postgresqlSecretName",
        "dagsterHome",
        "serviceAccountName",
        "celeryConfigSecretName",
        "dagsterInstanceConfigMap",
    },
    "postgresql": {
        "image",
        "enabled",
        "postgresqlHost",
        "postgresqlUsername",
        "postgresqlPassword",
        "postgresqlDatabase",
        "postgresqlParams",
        "postgresqlScheme",
        "service",
    },
    "deployment": {
        "name",
        "image",
        "dagsterApiGrpcArgs",
        "codeServerArgs",
        "includeConfigInLaunchedRuns",
        "port",
        "env",
        "envConfigMaps",
        "envSecrets",
        "annotations",
        "nodeSelector",
        "affinity",
        "tolerations",
        "podSecurityContext",
        "securityContext",
        "resources",
        "livenessProbe",
        "readinessProbe",
        "startupProbe",
        "labels",
        "volumeMounts",
        "volumes",
        "schedulerName",
    },
    "k8sRunLauncher": {
        "image",
        "imagePullPolicy",
        "jobNamespace",
        "loadInclusterConfig",
        "kubeconfigFile",
        "envConfigMaps",
        "envSecrets",
        "envVars",
        "volumeMounts",
        "volumes",
        "labels",
        "failPodOnRunFailure",
        "resources",
        "schedulerName",
        "securityContext",
        "runK8sConfig",
    },
    "runK8sConfig": {
        "containerConfig",
        "podSpecConfig",
        "podTemplateSpecMetadata",
        "jobSpecConfig",
        "jobMetadata",
    },
    "queuedRunCoordinator": {
        "maxConcurrentRuns",
        "tagConcurrencyLimits",
        "dequeueIntervalSeconds",
        "dequeueNumWorkers",
        "dequeueUseThreads",
        "blockOpConcurrencyLimitedRuns",
    },
    "tagConcurrencyLimit": {"key", "value", "limit"},
    "concurrency": {"enabled", "pools", "runs"},
    "pools": {"defaultLimit", "granularity", "opGranularityRunBuffer"},
}


@pytest.fixture(scope="module")
def values() -> dict:
    return yaml.safe_load(VALUES.read_text())


def test_every_key_is_one_the_chart_reads(values):
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    queued = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]
    sections = {
        "": values,
        "global": values["global"],
        "postgresql": values["postgresql"],
        "deployment": deployment,
        "k8sRunLauncher": launcher,
        "runK8sConfig": launcher["runK8sConfig"],
        "queuedRunCoordinator": queued,
        "concurrency": values["concurrency"],
        "pools": values["concurrency"]["pools"],
        **{f"tagConcurrencyLimit[{i}]": limit for i, limit in enumerate(queued["tagConcurrencyLimits"])},
    }
    for name, section in sections.items():
        known = CHART_KEYS[name.split("[")[0]]
        assert set(section) <= known, f"{name or 'top level'}: unknown keys {set(section) - known}"
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    assert values["dagsterDaemon"]["runCoordinator"]["type"] == "QueuedRunCoordinator"


def test_code_location_runs_our_module_and_postgres_comes_from_a_secret(values):
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["codeServerArgs"] == ["-m", "sn46_pipelines.definitions"] and deployment["port"] == 3030
    assert deployment["includeConfigInLaunchedRuns"] == {"enabled": True}
    assert values["postgresql"]["enabled"] is False and values["generatePostgresqlPasswordSecret"] is False
    assert values["global"]["postgresqlSecretName"] and "postgresqlPassword" not in values["postgresql"]
    # the driver dagster-postgres installs (a bare postgresql:// means psycopg 3 to SQLAlchemy 2.1)
    assert values["postgresql"]["postgresqlScheme"] == "postgresql+psycopg2"


def test_env_is_valid_kubernetes_and_credentials_are_secret_references(values):
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    env = [
        k8s_model_from_dict(kubernetes.client.V1EnvVar, k8s_snake_case_dict(kubernetes.client.V1EnvVar, item))
        for item in deployment["env"]
    ]
    by_name = {item.name: item for item in env}
    for secret in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert (
            by_name[secret].value is None
            and by_name[secret].value_from.secret_key_ref.name == "sn46-object-store"
        )
    assert by_name["SN46_EXECUTOR"].value == "k8s" and by_name["SN46_TRAINING_LAUNCHER"].value == "k8s"
    k8s_model_from_dict(kubernetes.client.V1ResourceRequirements, deployment["resources"])


def test_run_pods_config_is_what_the_k8s_run_launcher_accepts(values):
    launcher = values["runLauncher"]["config"]["k8sRunLauncher"]
    run_k8s = launcher["runK8sConfig"]
    # The chart passes runK8sConfig on with snake-case section names; each section is a Kubernetes object.
    k8s_model_from_dict(
        kubernetes.client.V1Container,
        {"name": "run", **k8s_snake_case_dict(kubernetes.client.V1Container, run_k8s["containerConfig"])},
    )
    k8s_model_from_dict(
        kubernetes.client.V1PodSpec,
        {"containers": [], **k8s_snake_case_dict(kubernetes.client.V1PodSpec, run_k8s["podSpecConfig"])},
    )
    k8s_model_from_dict(
        kubernetes.client.V1JobSpec,
        {"template": {}, **k8s_snake_case_dict(kubernetes.client.V1JobSpec, run_k8s["jobSpecConfig"])},
    )
    config = {
        "load_incluster_config": launcher["loadInclusterConfig"],
        "image_pull_policy": launcher["imagePullPolicy"],
        "fail_pod_on_run_failure": launcher["failPodOnRunFailure"],
        "labels": launcher["labels"],
        "run_k8s_config": {
            "container_config": run_k8s["containerConfig"],
            "pod_spec_config": run_k8s["podSpecConfig"],
            "job_spec_config": run_k8s["jobSpecConfig"],
        },
        "instance_config_map": "sn46-dagster-instance",
        "dagster_home": "/opt/dagster/dagster_home",
        "service_account_name": "sn46-dagster",
        "job_namespace": "sn46",
    }
    result = validate_config(K8sRunLauncher.config_type(), config)
    assert result.success, [error.message for error in result.errors]


def test_run_queue_limits_are_on_the_jobs_own_tags(values):
    limits = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"][
        "tagConcurrencyLimits"
    ]
    assert {limit["key"]: (limit.get("value"), limit["limit"]) for limit in limits} == {
        GC_STORE_TAG: ({"applyLimitPerUniqueValue": True}, 1),
        GPU_TAG: (None, 1),
    }
    assert values["concurrency"]["pools"] == {"defaultLimit": 1, "granularity": "run"}


def test_the_values_variables_make_a_valid_gpu_training_pod(values):
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    plain = {item["name"]: item["value"] for item in deployment["env"] if "value" in item}
    settings = resolve_launch_settings({}, plain)
    assert settings.launcher == "k8s" and settings.gpu_count == 1
    environment = container_environment(plain["SN46_ENV"], "us-east-2", None, injected_credentials=True)
    pod = build_pod_body(
        "dagster-run-price-model",
        None,
        None,
        {},
        training_pod_metadata(plain["SN46_ENV"]),
        training_pod_spec(settings, environment),
    )
    assert pod.spec.containers[0].image == plain["SN46_IMAGE"]
    assert pod.spec.containers[0].resources.limits["nvidia.com/gpu"] == "1"
