"""The whole pipeline once on the production instance: PostgreSQL storage, the daemon deciding what runs.

One pass (module fixture): demo uploads for several miners, then
``run_pipeline()``, which starts ``dagster-daemon`` on the production
``dagster.yaml``: the upload sensor asks for one ingest run per hotkey, the run
queue starts several at once (each on the multiprocess executor, a process per
step), and the automation sensors then build everything downstream. That is
many processes writing runs and events at once, the load that makes sqlite
lock. Then PostgreSQL is restarted and a fresh process reads the instance again.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import dagster as dg
import pytest

from sn46_pipelines.demo.seed import seed_demo
from sn46_pipelines.modelstore import ModelStore
from sn46_pipelines.objectstore import open_store
from sn46_pipelines.pipeline import PipelineSummary, run_pipeline
from tests.deploy.postgres.instance_snapshot import DOWNSTREAM, snapshot
from tests.deploy.postgres.prod_home_helpers import ProdHome, make_prod_home

HERE = Path(__file__).resolve().parent
MINERS = 4
NOW = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
#: What PostgreSQL or Dagster say when writers get in each other's way.
LOCK_ERRORS = (
    "database is locked",
    "deadlock detected",
    "could not serialize access",
    "lock timeout",
    "could not obtain lock",
    "too many clients",
)
#: Severities of a PostgreSQL log line that reports a failure.
SERVER_ERRORS = ("ERROR", "FATAL", "PANIC")


@dataclass
class PipelinePass:
    prod: ProdHome
    hotkeys: list[str]
    summary: PipelineSummary
    runs: list[dg.RunRecord]
    events: dict[str, list[dg.EventLogEntry]]
    server_log: str  # what PostgreSQL logged during the pass
    before: dict[str, Any]  # the instance as the pass left it
    after: dict[str, Any]  # the same, read by a fresh process after PostgreSQL restarted
    model_head: str | None  # the head of this pass's own model store

    @property
    def ingest_runs(self) -> list[dg.RunRecord]:
        return [r for r in self.runs if r.dagster_run.job_name == "ingest_job"]

    @property
    def materialized_by(self) -> dict[str, list[str]]:
        """Each downstream asset -> the runs that materialized it."""
        found: dict[str, list[str]] = {}
        for run_id, events in self.events.items():
            for event in events:
                if event.dagster_event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                    name = event.dagster_event.asset_key.to_user_string()
                    if name in DOWNSTREAM:
                        found.setdefault(name, []).append(run_id)
        return found


@pytest.fixture(scope="module")
def pipeline_pass(postgres, moto_endpoint, tmp_path_factory) -> PipelinePass:
    folder = tmp_path_factory.mktemp("prod-pass")
    prod = make_prod_home(postgres, moto_endpoint, folder)
    stores = {name: folder / name for name in ("data", "models", "models-replica")}
    for path in stores.values():
        path.mkdir()
    with pytest.MonkeyPatch.context() as env:
        for name, value in prod.env.items():
            env.setenv(name, value)
        env.setenv("SN46_HOME", str(folder))
        env.setenv("SN46_DATA_STORE", f"file://{stores['data']}")
        env.setenv("SN46_MODEL_STORE", f"file://{stores['models']}")
        env.setenv("SN46_REPLICA_STORE", f"file://{stores['models-replica']}")
        uploads = open_store(f"file://{stores['data']}")
        report = seed_demo(uploads, miners=MINERS, validators=1, seed=11, now=NOW)

        log_start = len(postgres.log_text())
        summary = run_pipeline(timeout=900)
        with dg.DagsterInstance.get() as instance:
            before = snapshot(instance)
            runs = list(instance.get_run_records())
            events = {r.dagster_run.run_id: instance.all_logs(r.dagster_run.run_id) for r in runs}
        server_log = postgres.log_text()[log_start:]
        head = ModelStore.open(f"file://{stores['models']}").head()

        postgres.restart()
        fresh = subprocess.run(
            [sys.executable, str(HERE / "instance_snapshot.py")],
            capture_output=True,
            text=True,
            env=os.environ,
            cwd=folder,
            timeout=120,
        )
        assert fresh.returncode == 0, fresh.stderr
    return PipelinePass(
        prod=prod,
        hotkeys=sorted(m.hotkey for m in report.miners),
        summary=summary,
        runs=runs,
        events=events,
        server_log=server_log,
        before=before,
        after=json.loads(fresh.stdout.splitlines()[-1]),
        model_head=head.version_id if head else None,
    )


def test_every_run_succeeded(pipeline_pass: PipelinePass) -> None:
    p = pipeline_pass
    assert p.summary.ok, p.summary.failed
    assert sorted(p.summary.hotkeys) == p.hotkeys
    assert all(stats["rows_accepted"] > 0 for stats in p.summary.hotkeys.values())
    assert set(p.summary.downstream) == set(DOWNSTREAM)
    assert sorted(r.dagster_run.tags["dagster/partition"] for r in p.ingest_runs) == p.hotkeys
    # One run per hotkey (the upload sensor), then per automation sensor one run, or two when the round's
    # ingests straddle a tick of the deadline cron (the second picks up the rest). The views rebuild in
    # an aggregates run or, once that run's checks have passed, in a run of their own; the pin moves with
    # the model or just after it. (The views' freshness check may add a run of its own when its
    # 15-minute tick falls inside the pass: it materializes nothing.)
    assert len(p.ingest_runs) == MINERS
    by_asset = {name: set(runs) for name, runs in p.materialized_by.items()}
    aggregates, training = by_asset["listing_aggregates"], by_asset["price_model"]
    assert 1 <= len(aggregates) <= 2
    assert 1 <= len(training) <= 2
    assert 1 <= len(by_asset["validator_views"]) <= 2 * len(aggregates)
    assert 1 <= len(by_asset["inference_pin"]) <= 2 * len(training)
    ingest = {r.dagster_run.run_id for r in p.ingest_runs}
    assert not ingest & set().union(*by_asset.values())
    assert {r.dagster_run.status for r in p.runs} == {dg.DagsterRunStatus.SUCCESS}


def test_the_pass_wrote_to_the_stores_of_its_own_environment(pipeline_pass: PipelinePass) -> None:
    """Run and step processes fork from a server started by this pass, with this pass's variables."""
    p = pipeline_pass
    assert p.model_head is not None
    assert p.model_head == p.summary.downstream["price_model"]["version_id"]


def test_automation_runs_carry_their_sensor_and_training_the_gpu_tag(pipeline_pass: PipelinePass) -> None:
    by_asset = pipeline_pass.materialized_by
    runs = {r.dagster_run.run_id: r.dagster_run for r in pipeline_pass.runs}
    aggregates_runs, training_runs = by_asset["listing_aggregates"], by_asset["price_model"]
    # The views follow the aggregates (in the same run, or their own once the checks passed), the pin
    # the model: every one of those runs was requested by its automation sensor.
    for run_id in {*aggregates_runs, *by_asset["validator_views"]}:
        assert runs[run_id].tags["dagster/sensor_name"] == "sn46_listings_automation"
    for run_id in by_asset["inference_pin"]:
        assert runs[run_id].tags["dagster/sensor_name"] == "sn46_training_automation"
    for run_id in training_runs:
        assert runs[run_id].tags["dagster/sensor_name"] == "sn46_training_automation"
        assert runs[run_id].tags["sn46/gpu"] == "true"
    for record in pipeline_pass.ingest_runs:
        assert record.dagster_run.tags["dagster/sensor_name"] == "miner_upload_sensor"
        assert record.dagster_run.tags["dagster/run_key"].startswith(
            record.dagster_run.tags["dagster/partition"]
        )


def test_partitions_ran_at_once_each_on_the_multiprocess_executor(pipeline_pass: PipelinePass) -> None:
    p = pipeline_pass
    for record in p.runs:
        kinds = {e.dagster_event.event_type for e in p.events[record.dagster_run.run_id] if e.dagster_event}
        assert dg.DagsterEventType.STEP_WORKER_STARTED in kinds  # a step process: the multiprocess executor
    spans = [(r.start_time, r.end_time) for r in p.ingest_runs]
    most_at_once = max(sum(start <= t < end for start, end in spans) for t, _ in spans)
    assert most_at_once >= 2, spans


def test_no_lock_errors(pipeline_pass: PipelinePass) -> None:
    p = pipeline_pass
    errors = [e.message for events in p.events.values() for e in events if e.level >= logging.ERROR]
    assert errors == []
    messages = " ".join(e.message for events in p.events.values() for e in events).lower()
    assert not [text for text in LOCK_ERRORS if text in messages]
    # PostgreSQL logs every failed statement: none failed, for locks or any other reason.
    lines = p.server_log.splitlines()
    failed = [line for line in lines if any(f"{severity}:" in line for severity in SERVER_ERRORS)]
    assert failed == [], p.server_log


def test_runs_partitions_and_materializations_survive_a_restart(pipeline_pass: PipelinePass) -> None:
    p = pipeline_pass
    assert p.after == p.before
    assert p.after["storage"] == "PostgresRunStorage"
    assert len(p.after["runs"]) == len(p.runs) and {run[2] for run in p.after["runs"]} == {"SUCCESS"}
    assert p.after["partitions"] == p.hotkeys
    assert p.after["materializations_per_partition"] == {hotkey: 1 for hotkey in p.hotkeys}
    assert p.after["downstream_materialized_by"] == p.materialized_by


def test_every_step_left_its_output_in_the_compute_log_bucket(
    pipeline_pass: PipelinePass, moto_endpoint: str
) -> None:
    p = pipeline_pass
    s3 = boto3.client("s3", endpoint_url=moto_endpoint)
    listed = s3.list_objects_v2(Bucket=p.prod.compute_logs_bucket, Prefix="dagster/compute-logs/storage/")
    # dagster/compute-logs/storage/<run id>/compute_logs/<step process>.out|.err
    logs = Counter(obj["Key"].split("/")[3] for obj in listed.get("Contents", []))
    # The sensors' ticks log there too, under the code location's repository rather than a run.
    assert logs.pop("__repository__", 0) > 0
    steps = {
        run_id: sum(e.dagster_event_type == dg.DagsterEventType.STEP_START for e in events)
        for run_id, events in p.events.items()
    }
    assert logs == {run_id: 2 * count for run_id, count in steps.items()}  # stdout and stderr of each step
