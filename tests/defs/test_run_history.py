"""``prune_run_history_job`` on a real Dagster instance, with the project's real ingest and aggregates.

What must hold after a prune: old runs are gone with their event-log files and
compute logs, while the runs the project still reads stay (each partition's
newest materialization, the newest one reporting ``curated_rows``, each
asset's newest, each job's newest), so the next aggregates run still passes
its ``rows_reconcile`` check and nothing is ingested again.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from sn46_pipelines.config import load_settings
from sn46_pipelines.definitions import build_definitions
from sn46_pipelines.defs.listings.ingest import miner_hotkeys, miner_listings
from sn46_pipelines.defs.resources import DataStoreResource
from sn46_pipelines.defs.run_history import (
    build_defs,
    prune_run_history,
    runs_still_read,
)
from sn46_pipelines.demo.seed import seed_demo
from tests.defs.listings.runs import build_aggregates

NOW = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)


@pytest.fixture
def instance():
    with dg.instance_for_test() as instance:
        yield instance


def ingest(instance, store, hotkey) -> str:
    instance.add_dynamic_partitions(miner_hotkeys.name, [hotkey])
    result = dg.materialize(
        [miner_listings],
        partition_key=hotkey,
        instance=instance,
        resources={"data_store": DataStoreResource(url=store.url)},
    )
    return result.run_id


def prune(instance, **config) -> dg.ExecuteInProcessResult:
    """The real job, from the project's definitions, with every finished run counted as old."""
    job = build_definitions(load_settings("test")).resolve_job_def("prune_run_history_job")
    run_config = {"ops": {"prune_run_history": {"config": {"days": 1e-9, **config}}}}
    return job.execute_in_process(instance=instance, run_config=run_config)


def run_ids(instance) -> set[str]:
    return {record.dagster_run.run_id for record in instance.get_run_records()}


def outcome(result: dg.ExecuteInProcessResult) -> dict:
    [output] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    return {k: v.value for k, v in output.event_specific_data.metadata.items()}


def test_old_runs_go_and_what_scoring_still_reads_stays(instance, folder_store):
    report = seed_demo(folder_store, miners=2, validators=1, seed=5, now=NOW)
    first, second = (miner.hotkey for miner in report.miners)
    reported = ingest(instance, folder_store, first)  # curates: reports curated_rows
    idle = ingest(instance, folder_store, first)  # no new files: no curated_rows
    newest = ingest(instance, folder_store, first)
    other = ingest(instance, folder_store, second)
    old_aggregates = build_aggregates(instance, folder_store).run_id
    new_aggregates = build_aggregates(instance, folder_store).run_id
    in_flight = dg.DagsterRun(job_name="ingest_job", run_id="f" * 32, status=dg.DagsterRunStatus.STARTED)
    instance.add_run(in_flight)
    shard = instance.event_log_storage.path_for_shard(idle)
    # The folder in which the local compute-log manager keeps the run's captured output:
    captured = instance.compute_log_manager.get_captured_local_path([idle, "compute_logs"], "out")
    logs = os.path.dirname(captured)
    assert os.listdir(logs)
    assert os.path.exists(shard)

    result = prune(instance)

    assert result.success
    assert outcome(result)["runs_deleted"] == 2
    assert run_ids(instance) == {reported, newest, other, new_aggregates, in_flight.run_id, result.run_id}
    assert idle not in run_ids(instance) and old_aggregates not in run_ids(instance)
    assert not os.path.exists(shard) and not os.path.exists(logs)
    # What the next round needs is still there: the aggregates' reconcile check passes, and the
    # ingest manifest (in the data store, not in Dagster) keeps every file read once.
    rebuilt = build_aggregates(instance, folder_store)
    checks = {e.check_name: e.passed for e in rebuilt.get_asset_check_evaluations()}
    assert rebuilt.success and checks["rows_reconcile"], checks
    again = dg.materialize(
        [miner_listings],
        partition_key=first,
        instance=instance,
        resources={"data_store": DataStoreResource(url=folder_store.url)},
    )
    [event] = again.get_asset_materialization_events()
    assert event.materialization.metadata["files_processed"].value == 0


def test_a_dry_run_deletes_nothing_and_a_pass_stops_at_max_runs(instance, folder_store):
    report = seed_demo(folder_store, miners=1, validators=1, seed=6, now=NOW)
    hotkey = report.miners[0].hotkey
    runs = [ingest(instance, folder_store, hotkey) for _ in range(4)]  # the first curates, the last is newest
    before = run_ids(instance)

    dry = prune(instance, dry_run=True)
    assert run_ids(instance) == before | {dry.run_id}
    assert (outcome(dry)["runs_deleted"], outcome(dry)["runs_to_delete"]) == (0, 2)

    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    keep = runs_still_read(instance)
    assert {runs[0], runs[-1]} <= keep
    first = prune_run_history(instance, cutoff=cutoff, keep=keep | {dry.run_id}, max_runs=1)
    assert (first.deleted, first.more) == ([runs[1]], True)  # oldest first
    second = prune_run_history(instance, cutoff=cutoff, keep=keep | {dry.run_id}, max_runs=5)
    assert (second.deleted, second.more, second.compute_log_errors) == ([runs[2]], False, 0)
    assert run_ids(instance) == {runs[0], runs[-1], dry.run_id}


def test_the_schedule_ships_in_the_sensors_state():
    local, stopped = load_settings("local"), load_settings("local")
    stopped = stopped.model_copy(
        update={"automation": stopped.automation.model_copy(update={"sensors": "stopped"})}
    )
    assert local.automation.schedules == "stopped"  # the model-store schedules stay off on a laptop
    running = build_defs(local).resolve_schedule_def("prune_run_history_schedule")
    assert running.default_status == dg.DefaultScheduleStatus.RUNNING
    assert running.cron_schedule == "30 5 * * *"
    off = build_defs(stopped).resolve_schedule_def("prune_run_history_schedule")
    assert off.default_status == dg.DefaultScheduleStatus.STOPPED
    assert local.automation.run_history_days == 7
    assert load_settings("prod").automation.run_history_days == 30


def test_logs_that_cannot_be_deleted_leave_the_pass_going_and_are_counted(
    instance, folder_store, monkeypatch
):
    report = seed_demo(folder_store, miners=1, validators=1, seed=7, now=NOW)
    runs = [ingest(instance, folder_store, report.miners[0].hotkey) for _ in range(4)]

    def refused(**_):
        raise PermissionError("AccessDenied: s3:DeleteObject on dagster/compute-logs/")

    monkeypatch.setattr(instance.compute_log_manager, "delete_logs", refused)
    cutoff = datetime.now(UTC) + timedelta(seconds=1)
    pruned = prune_run_history(instance, cutoff=cutoff, keep=runs_still_read(instance), max_runs=10)

    assert pruned.deleted == runs[1:3]
    assert pruned.compute_log_errors == 2
    assert (
        pruned.first_compute_log_error
        == "PermissionError: AccessDenied: s3:DeleteObject on dagster/compute-logs/"
    )
    assert run_ids(instance) == {runs[0], runs[3]}


@pytest.mark.parametrize(
    ("config", "field"), [({"days": 0}, "days"), ({"days": -1}, "days"), ({"max_runs": 0}, "max_runs")]
)
def test_a_bad_pass_config_is_refused_before_anything_is_deleted(instance, config, field):
    instance.add_run(
        dg.DagsterRun(job_name="ingest_job", run_id="e" * 32, status=dg.DagsterRunStatus.SUCCESS)
    )
    with pytest.raises(Exception, match=rf"(?s){field}.*greater than"):
        prune(instance, **config)
    assert "e" * 32 in run_ids(instance)
