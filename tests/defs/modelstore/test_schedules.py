"""Schedules evaluated at their cron times: nightly GC, hourly/nightly-deep verification, replica checks."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from dagster._utils.schedules import cron_string_iterator

from sn46_pipelines.config import load_settings
from sn46_pipelines.definitions import defs
from sn46_pipelines.defs import modelstore
from sn46_pipelines.defs.modelstore.jobs import DEEP_VERIFY_HOUR, STORE_RETRY_POLICY
from sn46_pipelines.defs.resources import ModelStoreResource

gc_job = defs.resolve_job_def("gc_job")
verify_chain_job = defs.resolve_job_def("verify_chain_job")
replication_check_job = defs.resolve_job_def("replication_check_job")
nightly_gc_schedule = defs.resolve_schedule_def("nightly_gc_schedule")
chain_verification_schedule = defs.resolve_schedule_def("chain_verification_schedule")
replication_check_schedule = defs.resolve_schedule_def("replication_check_schedule")

DAY = datetime(2026, 11, 24, tzinfo=UTC)


def ticks(schedule: dg.ScheduleDefinition, start: datetime, end: datetime) -> list[datetime]:
    """The schedule's tick times in ``[start, end)``, from its cron string and timezone."""
    times = cron_string_iterator(start.timestamp() - 1, schedule.cron_schedule, schedule.execution_timezone)
    result = []
    for when in times:
        if when >= end:
            return result
        result.append(when)
    return result


def evaluate(schedule: dg.ScheduleDefinition, when: datetime) -> dg.RunRequest:
    with dg.build_schedule_context(scheduled_execution_time=when) as context:
        [request] = schedule.evaluate_tick(context).run_requests
    return request


def test_gc_runs_once_a_night_at_two_utc_with_the_environment_policy():
    times = ticks(nightly_gc_schedule, DAY, DAY + timedelta(days=3))

    assert [t.astimezone(UTC) for t in times] == [DAY + timedelta(days=d, hours=2) for d in range(3)]
    request = evaluate(nightly_gc_schedule, times[0])
    assert nightly_gc_schedule.job_name == gc_job.name
    assert not request.run_config.get("ops")  # the policy is the environment's, read when the run starts


def test_verification_is_shallow_every_hour_and_deep_once_a_night_after_gc():
    times = ticks(chain_verification_schedule, DAY, DAY + timedelta(days=1))
    assert len(times) == 24 and all(t.minute == 0 for t in times)

    deep = {t.hour for t in times if evaluate(chain_verification_schedule, t).tags["sn46/verify"] == "deep"}

    assert deep == {DEEP_VERIFY_HOUR} == {3}  # the hour after the 02:00 GC: it checks what GC left
    night = evaluate(chain_verification_schedule, DAY + timedelta(hours=DEEP_VERIFY_HOUR))
    noon = evaluate(chain_verification_schedule, DAY + timedelta(hours=12))
    assert night.run_config["ops"] == {"model_store_verify": {"config": {"deep": True}}}
    assert noon.run_config["ops"] == {"model_store_verify": {"config": {"deep": False}}}
    dg.validate_run_config(verify_chain_job, night.run_config)


def test_replica_is_checked_every_fifteen_minutes_the_rpo():
    times = ticks(replication_check_schedule, DAY, DAY + timedelta(hours=1))

    assert [t.minute for t in times] == [0, 15, 30, 45]
    assert replication_check_schedule.job_name == replication_check_job.name
    assert not evaluate(replication_check_schedule, times[1]).run_config.get("ops")  # RPO 900 s by default


@pytest.mark.parametrize("job", [gc_job, verify_chain_job, replication_check_job], ids=lambda job: job.name)
def test_every_job_retries_transient_failures_with_backoff(job: dg.JobDefinition):
    assert job.op_retry_policy == STORE_RETRY_POLICY
    assert STORE_RETRY_POLICY.backoff == dg.Backoff.EXPONENTIAL and STORE_RETRY_POLICY.max_retries >= 3


def test_the_operations_load_as_one_code_location():
    domain = modelstore.build_defs(load_settings())
    loadable = dg.Definitions.merge(domain, dg.Definitions(resources={"model_store": ModelStoreResource()}))
    dg.Definitions.validate_loadable(loadable)
    assert loadable.resolve_assets_def("model_store").is_external
    checks = {key.name for key in loadable.resolve_asset_graph().asset_check_keys}
    assert checks == {modelstore.CHAIN_CHECK, modelstore.REPLICA_CHECK}
