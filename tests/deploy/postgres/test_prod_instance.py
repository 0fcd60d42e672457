"""``deploy/dagster.prod.yaml`` loads into a real DagsterInstance on PostgreSQL, with the jobs' limits."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
import yaml
from dagster._core.errors import DagsterInvalidConfigError
from dagster._core.instance.config import PoolGranularity
from dagster_aws.s3.compute_log_manager import S3ComputeLogManager
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from sn46_pipelines.config import load_settings
from sn46_pipelines.definitions import defs
from sn46_pipelines.defs.modelstore import GC_POOL, GC_STORE_TAG
from sn46_pipelines.defs.training import GPU_TAG
from tests.deploy.postgres.prod_home_helpers import PROD_YAML
from tests.support.paths import REPO


def run_queue_limits(instance: dg.DagsterInstance) -> dict[str, dict]:
    """The run queue's tag limits by tag key, as the daemon's coordinator will apply them."""
    limits = instance.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert len({limit["key"] for limit in limits}) == len(limits), "one limit per tag key"
    return {limit["key"]: limit for limit in limits}


def test_storage_is_postgres_and_the_instance_is_configured_for_production(prod_home) -> None:
    with dg.DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        address = f"127.0.0.1:{prod_home.env['DAGSTER_PG_PORT']}/{prod_home.database}"
        assert address in instance.run_storage.postgres_url
        assert type(instance.run_coordinator).__name__ == "QueuedRunCoordinator"
        assert type(instance.run_launcher).__name__ == "DefaultRunLauncher"
        assert isinstance(instance.compute_log_manager, S3ComputeLogManager)
        assert instance.compute_log_manager._s3_bucket == prod_home.compute_logs_bucket
        assert instance.storage_directory() == str(prod_home.home / "storage")

        assert instance.run_monitoring_enabled
        assert instance.run_monitoring_start_timeout_seconds == 600
        assert instance.run_monitoring_cancel_timeout_seconds == 300
        assert instance.run_monitoring_max_resume_run_attempts == 0  # the default launcher cannot resume
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert not instance.run_retries_retry_on_asset_or_op_failure  # op failures are answers, not crashes
        assert not instance.telemetry_enabled

        pools = instance.get_concurrency_config().pool_config
        assert pools.default_pool_limit == 1 and pools.pool_granularity == PoolGranularity.RUN
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 10


def test_the_run_queue_limits_exactly_the_tags_the_jobs_carry(prod_home) -> None:
    gc_job, train_job = defs.resolve_job_def("gc_job"), defs.resolve_job_def("train_job")
    with dg.DagsterInstance.get() as instance:
        limits = run_queue_limits(instance)
    assert gc_job.run_tags[GC_STORE_TAG] == load_settings().model_store  # one value per model store
    assert GPU_TAG in train_job.run_tags
    per_store = {"key": GC_STORE_TAG, "value": {"applyLimitPerUniqueValue": True}, "limit": 1}
    assert limits[GC_STORE_TAG] == per_store
    assert limits[GPU_TAG] == {"key": GPU_TAG, "limit": 1}  # every value counts: all GPU runs share the limit
    carried = {key for job in defs.resolve_all_job_defs() for key in job.run_tags}
    assert set(limits) <= carried, "a limit on a tag no job carries limits nothing"


def test_every_pool_the_assets_and_ops_claim_is_limited_by_default(prod_home) -> None:
    ops = (op for job in defs.resolve_all_job_defs() for op in job.graph.iterate_op_defs())
    assert {GC_POOL, "sn46_inference_pin"} <= {op.pool for op in ops}
    with dg.DagsterInstance.get() as instance:
        assert instance.global_op_concurrency_default_limit == 1


def test_the_local_instance_queues_with_the_same_tag_limits(tmp_path, monkeypatch) -> None:
    """The checkout's sqlite instance (``sn46 pipeline ui``) applies the production tag limits too."""
    local = yaml.safe_load((REPO / "dagster.yaml").read_text())
    prod = yaml.safe_load(PROD_YAML.read_text())
    assert "storage" not in local  # Dagster's default: sqlite under DAGSTER_HOME, no variable to set
    (tmp_path / "dagster.yaml").write_text((REPO / "dagster.yaml").read_text())
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "SqliteRunStorage"
    tag_limits = [instance["concurrency"]["runs"]["tag_concurrency_limits"] for instance in (local, prod)]
    assert tag_limits[0] == tag_limits[1]


def test_a_missing_connection_variable_is_named(prod_home, monkeypatch) -> None:
    monkeypatch.delenv("DAGSTER_PG_HOST")
    with pytest.raises(DagsterInvalidConfigError, match="DAGSTER_PG_HOST"):
        dg.DagsterInstance.get()


def test_the_operator_commands_of_the_docs_work(prod_home) -> None:
    """``dagster instance migrate`` and ``dagster instance concurrency set`` (docs/dagster-instance.md)."""
    dagster = [sys.executable, "-m", "dagster"]
    for command in (["instance", "migrate"], ["instance", "concurrency", "set", "gpu", "2"]):
        out = subprocess.run([*dagster, *command], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
    with dg.DagsterInstance.get() as instance:
        assert instance.event_log_storage.get_concurrency_info("gpu").slot_count == 2


def test_the_run_history_prunes_on_postgres_with_step_logs_in_s3(prod_home, moto_endpoint) -> None:
    """Old runs leave PostgreSQL and their step logs leave the bucket; the newest materialization stays."""
    import boto3

    from sn46_pipelines.defs.run_history import prune_run_history, runs_still_read

    @dg.asset
    def scores() -> None:
        print("scored")  # captured into the run's step logs

    s3 = boto3.client("s3", endpoint_url=moto_endpoint)

    def logs_of(run_id: str) -> list[str]:
        listing = s3.list_objects_v2(Bucket=prod_home.compute_logs_bucket, Prefix="dagster/compute-logs/")
        return [o["Key"] for o in listing.get("Contents", []) if f"/{run_id}/" in o["Key"]]

    with dg.DagsterInstance.get() as instance:
        runs = [dg.materialize([scores], instance=instance).run_id for _ in range(3)]
        assert logs_of(runs[0]), "the step logs went to S3"
        cutoff = datetime.now(UTC) + timedelta(seconds=1)
        pruned = prune_run_history(instance, cutoff=cutoff, keep=runs_still_read(instance), max_runs=10)

        assert pruned.deleted == runs[:2] and pruned.compute_log_errors == 0
        assert [r.dagster_run.run_id for r in instance.get_run_records()] == [runs[2]]
        assert instance.get_latest_materialization_event(scores.key).run_id == runs[2]
        assert not logs_of(runs[0]) and not logs_of(runs[1]) and logs_of(runs[2])
