"""Launcher settings: SN46_* variables, explicit overrides, defaults, and errors that name the variable."""

import pytest

from sn46_pipelines.config import ConfigError
from sn46_pipelines.deploy import VARIABLES, LaunchSettings, resolve_launch_settings
from sn46_pipelines.deploy.training import container_environment, require_remote_stores


def test_defaults_train_locally_on_one_gpu_worth_of_settings():
    settings = resolve_launch_settings({}, {})
    assert settings == LaunchSettings()
    assert settings.launcher == "subprocess" and settings.gpu_count == 1
    assert settings.node_selector == {"nvidia.com/gpu.present": "true"}
    assert settings.tolerations == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert settings.ecs_secret_id("prod") == "sn46/prod/object-store"


def test_variables_are_parsed_and_explicit_settings_win():
    environ = {
        "SN46_TRAINING_LAUNCHER": " K8s ",
        "SN46_IMAGE": "registry.example/sn46:1.2",
        "SN46_GPU_COUNT": "4",
        "SN46_TRAINING_MEMORY_GIB": "60.5",
        "SN46_K8S_NODE_SELECTOR": "cloud.google.com/gke-accelerator=nvidia-l4, pool=train",
        "SN46_K8S_TOLERATIONS": (
            '[{"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]'
        ),
        "SN46_ECS_SUBNETS": "subnet-a, subnet-b,",
    }
    settings = resolve_launch_settings({"gpu_count": "2"}, environ)
    assert settings.launcher == "k8s" and settings.image == "registry.example/sn46:1.2"
    assert settings.gpu_count == 2 and settings.memory_gib == 60.5
    assert settings.node_selector == {"cloud.google.com/gke-accelerator": "nvidia-l4", "pool": "train"}
    assert settings.tolerations == [
        {"key": "sku", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}
    ]
    assert settings.ecs_subnets == ("subnet-a", "subnet-b")


def test_cpu_training_has_no_gpu_placement_and_an_empty_secret_means_none():
    settings = resolve_launch_settings(
        {}, {"SN46_GPU_COUNT": "0", "SN46_K8S_SECRET": "", "SN46_ECS_SECRET": ""}
    )
    assert settings.node_selector == {} and settings.tolerations == []
    assert settings.k8s_secret == "" and settings.ecs_secret_id("prod") == ""


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("SN46_TRAINING_LAUNCHER", "slurm", "expected one of subprocess, k8s, ecs"),
        ("SN46_GPU_COUNT", "two", "expected a whole number"),
        ("SN46_GPU_COUNT", "-1", "expected a whole number"),
        ("SN46_TRAINING_CPU", "0", "expected a positive number"),
        ("SN46_K8S_NODE_SELECTOR", "gpu", "expected comma-separated key=value pairs"),
        ("SN46_K8S_TOLERATIONS", "nvidia.com/gpu", "expected a JSON list of tolerations"),
        ("SN46_K8S_TOLERATIONS", '{"key": "x"}', "expected a JSON list of toleration objects"),
    ],
)
def test_a_bad_variable_is_named_with_what_was_expected(variable, value, expected):
    with pytest.raises(ConfigError) as caught:
        resolve_launch_settings({}, {variable: value})
    assert str(caught.value).startswith(f"{variable}: {expected}")
    assert f"got {value!r} [from variable {variable}]" in str(caught.value)


def test_unknown_override_and_missing_requirements_are_reported():
    with pytest.raises(ConfigError, match=r"unknown training launcher setting.*gpus"):
        resolve_launch_settings({"gpus": "1"}, {})
    settings = resolve_launch_settings({"launcher": "ecs"}, {})
    with pytest.raises(ConfigError) as caught:
        settings.require("image", "ecs_cluster", "ecs_subnets")
    assert "'ecs' needs SN46_IMAGE, SN46_ECS_CLUSTER, SN46_ECS_SUBNETS" in str(caught.value)


def test_every_setting_has_its_own_variable():
    assert len(set(VARIABLES.values())) == len(VARIABLES)
    assert all(name.startswith("SN46_") for name in VARIABLES.values())


def test_container_environment_is_plain_and_remote_launchers_refuse_folder_stores():
    assert container_environment("prod", "us-east-2", None, injected_credentials=False) == {
        "SN46_ENV": "prod",
        "AWS_REGION": "us-east-2",
        "AWS_DEFAULT_REGION": "us-east-2",
    }
    minio = container_environment("staging", "us-east-1", "http://minio:9000", injected_credentials=True)
    assert minio["AWS_ENDPOINT_URL"] == "http://minio:9000" and minio["SN46_SECRETS_SOURCE"] == "env"
    require_remote_stores("k8s", {"data_store": "s3://bucket/data"})
    with pytest.raises(ConfigError, match="cannot read model_store file:///srv/models: use s3://"):
        require_remote_stores("k8s", {"data_store": "s3://bucket/data", "model_store": "file:///srv/models"})
