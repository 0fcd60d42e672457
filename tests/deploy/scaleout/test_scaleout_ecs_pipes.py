"""price_model trained in an ECS task: the real asset, resource and PipesECSClient against moto's ECS,
CloudWatch Logs, Secrets Manager and S3, with the task's container run by ecs_agent.EcsAgent."""

import dagster as dg
import pytest

from sn46_pipelines.defs.resources import DataStoreResource, ModelStoreResource
from sn46_pipelines.defs.training import TrainingLauncher, price_model
from sn46_pipelines.demo.seed import seed_demo
from sn46_pipelines.listings.aggregates import aggregate_store, write_aggregates
from sn46_pipelines.listings.ingest import ingest_hotkey
from sn46_pipelines.modelstore import ModelStore
from sn46_pipelines.objectstore import open_store
from sn46_pipelines.pricemodel.pipes_train import CHECK_NAME
from tests.deploy.scaleout.ecs_agent import EcsAgent
from tests.deploy.scaleout.scaleout_world import SECRET_VALUES

#: Enough training to pass SN46's deployment rules on the demo data (they are blocking checks).
QUICK = {"steps": 1500, "hidden": 64}


def failure_message(result: dg.ExecuteInProcessResult) -> str:
    """The step's error with its causes (the asset's own exception is the cause of Dagster's)."""
    (event,) = [e for e in result.all_events if e.is_step_failure]
    error, messages = event.step_failure_data.error, []
    while error is not None:
        messages.append(error.message)
        error = error.cause
    return "\n".join(messages)


@pytest.fixture
def s3_stores(s3_bucket):
    """Demo uploads for six miners, ingested and aggregated in S3, and an empty model store beside them."""
    data = open_store(f"s3://{s3_bucket}/data")
    seed_demo(data, miners=6, seed=0)
    for prefix in data.list_prefixes("data/"):
        ingest_hotkey(data, prefix.removeprefix("data/hotkey=").rstrip("/"))
    write_aggregates(data, aggregate_store(data))
    return data.url, f"s3://{s3_bucket}/models"


def train(data_url: str, models_url: str) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        return dg.materialize(
            [price_model],
            instance=instance,
            resources={
                "data_store": DataStoreResource(url=data_url),
                "model_store": ModelStoreResource(url=models_url),
                "training_launcher": TrainingLauncher(),
            },
            run_config={"ops": {"price_model": {"config": QUICK}}},
            raise_on_error=False,
        )


def test_price_model_trains_in_an_ecs_task_and_reports_through_cloudwatch(ecs_world, s3_stores, monkeypatch):
    for name, value in ecs_world.launcher_environ().items():
        monkeypatch.setenv(name, value)
    data_url, models_url = s3_stores
    with EcsAgent(ecs_world.session, ecs_world.cluster) as agent:
        result = train(data_url, models_url)
    assert result.success, failure_message(result)
    (run,) = agent.runs
    assert run.exit_code == 0
    # ECS resolved the secret into the container; the Dagster side never held its values.
    assert run.environment["AWS_ACCESS_KEY_ID"] == SECRET_VALUES["aws_access_key_id"]
    assert run.environment["SN46_SECRETS_SOURCE"] == "env" and "DAGSTER_PIPES_CONTEXT" in run.environment
    (materialization,) = result.asset_materializations_for_node("price_model")
    version = materialization.metadata["version_id"].value
    assert ModelStore.open(models_url).get(version).metadata["beats_baseline"] is True
    assert materialization.metadata["AWS ECS Task URL"].value.endswith(run.task_arn.rsplit("/", 1)[-1])
    checks = {c.check_name: c for c in result.get_asset_check_evaluations()}
    assert checks[CHECK_NAME].passed and all(c.passed for c in checks.values()), checks
    (task,) = ecs_world.client("ecs").describe_tasks(cluster=ecs_world.cluster, tasks=[run.task_arn])["tasks"]
    assert task["lastStatus"] == "STOPPED"


def test_remote_launchers_refuse_folder_stores_before_starting_anything(tmp_path, monkeypatch):
    monkeypatch.setenv("SN46_TRAINING_LAUNCHER", "k8s")
    monkeypatch.setenv("SN46_IMAGE", "sn46:gpu")
    (tmp_path / "data").mkdir()
    result = train(f"file://{tmp_path / 'data'}", "s3://sn46-models-bucket/models")
    assert not result.success
    assert "cannot read data_store file://" in failure_message(result)


def test_k8s_launcher_without_image_names_the_variable(monkeypatch):
    monkeypatch.setenv("SN46_TRAINING_LAUNCHER", "k8s")
    monkeypatch.delenv("SN46_IMAGE", raising=False)
    result = train("s3://sn46-data-bucket/data", "s3://sn46-models-bucket/models")
    assert "training launcher 'k8s' needs SN46_IMAGE" in failure_message(result)
