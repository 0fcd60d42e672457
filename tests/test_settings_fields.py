"""One settings tree: every model declares its variables on its fields and reports a bad value alike."""

from __future__ import annotations

import pytest

from sn46_pipelines.config import ENV_OVERRIDES, ConfigError, load_settings, variables
from sn46_pipelines.deploy import VARIABLES, resolve_launch_settings
from sn46_pipelines.gateway.settings import GatewaySettings, load_gateway_settings


def test_each_variable_is_declared_on_its_field():
    assert ENV_OVERRIDES["SN46_SECRETS_SOURCE"] == "secrets.source"
    assert ENV_OVERRIDES["SN46_EXECUTOR"] == "executor"
    assert VARIABLES["ecs_task_family"] == "SN46_ECS_TASK_DEFINITION"
    gateway = {name: v.name for name, v in variables(GatewaySettings).items()}
    assert gateway["netuid"] == "NET_UID" and gateway["max_age_s"] == "SN46_GATEWAY_MAX_AGE_S"
    assert [name for name, v in variables(GatewaySettings).items() if v.secret] == ["redis_url"]


@pytest.mark.parametrize(
    ("load", "expected"),
    [
        (
            lambda: load_settings("local", {"SN46_EXECUTOR": "celery"}),
            "invalid configuration: executor: expected one of multiprocess, k8s, got 'celery' "
            "[from variable SN46_EXECUTOR]",
        ),
        (
            lambda: load_gateway_settings("local", {"S3_BUCKET": "one-bucket", "NET_UID": "forty-six"}),
            "NET_UID: Input should be a valid integer, unable to parse string as an integer, "
            "got 'forty-six' [from variable NET_UID]",
        ),
        (
            lambda: resolve_launch_settings({"gpu_count": "two"}, {"SN46_GPU_COUNT": "2"}),
            "SN46_GPU_COUNT: expected a whole number (0 or more), got 'two' "
            "[from training launcher setting gpu_count]",
        ),
    ],
)
def test_a_bad_value_names_the_field_the_problem_and_the_source(load, expected):
    with pytest.raises(ConfigError) as info:
        load()
    assert str(info.value) == expected


def test_problems_are_reported_together_in_one_line():
    with pytest.raises(ConfigError) as info:
        load_gateway_settings(
            "local",
            {"S3_BUCKET": "one-bucket", "DAILY_LIMIT_PER_MINER": "0", "SN46_GATEWAY_MAX_SKEW_S": "601"},
        )
    assert str(info.value) == (
        "DAILY_LIMIT_PER_MINER: Input should be greater than or equal to 1, got '0' "
        "[from variable DAILY_LIMIT_PER_MINER]; SN46_GATEWAY_MAX_SKEW_S: Input should be less than or "
        "equal to 600, got '601' [from variable SN46_GATEWAY_MAX_SKEW_S]"
    )


def test_blanks_are_dropped_and_an_empty_variable_is_unset_but_for_the_launcher():
    assert resolve_launch_settings({}, {"SN46_GPU_COUNT": " 3 ", "SN46_K8S_SECRET": ""}).k8s_secret == ""
    settings = load_gateway_settings(
        "local", {"S3_BUCKET": " one-bucket ", "NET_UID": " 7 ", "BT_NETWORK": ""}
    )
    assert (settings.bucket, settings.netuid, settings.network) == ("one-bucket", 7, "finney")
