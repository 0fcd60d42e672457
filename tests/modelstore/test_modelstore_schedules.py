"""The replication schedule: the quick check every 15 minutes, the deep one once a night."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg

from sn46_pipelines.definitions import defs
from sn46_pipelines.defs.modelstore.jobs import DEEP_REPLICATION_HOUR, DEEP_VERIFY_HOUR

DAY = datetime(2026, 11, 24, tzinfo=UTC)


def test_the_replica_is_checked_deep_once_a_night_after_the_deep_verification():
    schedule = defs.resolve_schedule_def("replication_check_schedule")
    job = defs.resolve_job_def("replication_check_job")
    deep = []
    for quarter in range(24 * 4):
        when = DAY + timedelta(minutes=15 * quarter)
        with dg.build_schedule_context(scheduled_execution_time=when) as context:
            [request] = schedule.evaluate_tick(context).run_requests
        if request.tags["sn46/replication"] == "deep":
            deep.append(when)
            assert request.run_config["ops"]["model_store_replication"]["config"]["deep"] is True
            dg.validate_run_config(job, request.run_config)
        else:
            assert not request.run_config.get("ops")  # the job's defaults: quick check, 900 s RPO
    assert deep == [DAY + timedelta(hours=DEEP_REPLICATION_HOUR)]
    assert DEEP_REPLICATION_HOUR > DEEP_VERIFY_HOUR
