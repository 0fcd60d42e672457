"""The one Dagster ``Definitions`` object of the project (``workspace.yaml`` loads it)."""

import os

import dagster as dg

from .assets.aggregates import listing_aggregates, validator_views
from .assets.ingest import miner_listings
from .assets.operations import model_store
from .assets.training import inference_pin, price_model
from .jobs import deploy_job, ingest_job, train_job
from .jobs.operations import (
    chain_verification_schedule,
    gc_job,
    nightly_gc_schedule,
    replication_check_job,
    replication_check_schedule,
    verify_chain_job,
)
from .config import ConfigError
from .resources import DataStoreResource, ModelStoreResource, TrainingLauncher
from .sensors.uploads import miner_upload_sensor

#: Values of SN46_EXECUTOR: how a run executes its steps.
EXECUTORS = ("multiprocess", "k8s")


def run_executor() -> dg.ExecutorDefinition | None:
    """Dagster's default (steps as processes of the run), or one Kubernetes pod per step.

    ``SN46_EXECUTOR=k8s`` selects ``k8s_job_executor`` (with the Helm chart's
    ``K8sRunLauncher``: deploy/helm/values.yaml). It is read when the code
    location loads, as an executor must be, and only imports dagster-k8s: no
    cluster is contacted until a run starts.
    """
    choice = os.environ.get("SN46_EXECUTOR", "multiprocess").strip().lower()
    if choice == "multiprocess":
        return None
    if choice == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    raise ConfigError(f"SN46_EXECUTOR: expected one of {', '.join(EXECUTORS)}, got {choice!r}")


defs = dg.Definitions(
    assets=[miner_listings, listing_aggregates, validator_views, price_model, inference_pin, model_store],
    jobs=[ingest_job, train_job, deploy_job, gc_job, verify_chain_job, replication_check_job],
    schedules=[nightly_gc_schedule, chain_verification_schedule, replication_check_schedule],
    sensors=[miner_upload_sensor],
    resources={
        "data_store": DataStoreResource(),
        "model_store": ModelStoreResource(),
        # Where training runs (a local process, a GPU pod or an ECS task) is read from SN46_* variables
        # when it starts, so this one instance fits every deployment.
        "training_launcher": TrainingLauncher(),
    },
    executor=run_executor(),
)
