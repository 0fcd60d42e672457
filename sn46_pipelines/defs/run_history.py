"""Run history: the Dagster instance keeps what the project still reads and forgets the rest.

Under the daemon every upload round starts one ingest run per miner: 256
miners uploading every two hours are over 3,000 runs a day, each with its
event log and compute logs. Dagster bounds sensor and schedule ticks
(``retention`` in the instance file) but never runs, so without this job the
instance grows with every round, for good. ``prune_run_history_job`` deletes,
every night, the finished runs last updated more than
``automation.run_history_days`` ago, their events and their compute logs.

Old runs whose events are still read are kept, however old:

* the newest materialization of every asset, and of every partition of a
  partitioned one: automation conditions, the views' freshness check and the
  training cadence compare against them, and the UI shows them;
* the newest observation of every asset (the model store's GC, verification
  and replica results);
* each miner's newest ``miner_listings`` materialization that reports
  ``curated_rows``: the aggregates' ``rows_reconcile`` check reads it;
* the newest run of every job, so a job that runs rarely keeps its last
  result (and its asset checks their last evaluation).

Runs still queued or in progress are never touched, and each night deletes at
most ``max_runs`` (the rest follow on the next nights), so one run stays short
however far behind the history is.
"""

import contextlib
import os
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg
from pydantic import Field

from ..config import Settings
from .automation import sensor_status
from .listings.aggregates import newest_curated_rows_record
from .listings.ingest import miner_listings

#: Statuses of runs that are over: the only ones ever deleted.
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]

#: Run records read per query while looking for old runs.
_PAGE = 500


@dataclass(frozen=True)
class PruneReport:
    """What one pass over the run history found and did."""

    cutoff: datetime
    """Runs last updated before this are old."""
    deleted: list[str]
    """Old runs deleted (only listed, with ``dry_run``)."""
    kept: int
    """Old runs kept because their events are still read."""
    more: bool
    """``max_runs`` was reached: older runs are left for the next pass."""
    compute_log_errors: int = 0
    """Runs whose compute logs could not be deleted (their run and events are gone all the same)."""
    first_compute_log_error: str | None = None
    """What the first of those failures said (they tend to share one cause, e.g. access denied)."""


def runs_still_read(instance: dg.DagsterInstance) -> set[str]:
    """The ids of the runs holding events the project reads or shows about its assets.

    Each asset's newest materialization and observation, each partition's
    newest materialization, and each miner's newest one reporting
    ``curated_rows`` (see the module's docstring). Each job's newest run is
    spared by :func:`prune_run_history` itself.
    """
    keep: set[str] = set()
    for key in instance.get_asset_keys():
        latest = [instance.fetch_materializations(key, limit=1), instance.fetch_observations(key, limit=1)]
        keep.update(record.run_id for records in latest for record in records.records)
        for partition in instance.get_materialized_partitions(key):
            in_partition = dg.AssetRecordsFilter(asset_key=key, asset_partitions=[partition])
            newest = instance.fetch_materializations(in_partition, limit=1)
            keep.update(record.run_id for record in newest.records)
            if key == miner_listings.key:
                reported = newest_curated_rows_record(instance, partition)
                if reported is not None:
                    keep.add(reported.run_id)
    return keep


def prune_run_history(
    instance: dg.DagsterInstance,
    *,
    cutoff: datetime,
    keep: set[str],
    max_runs: int,
    dry_run: bool = False,
) -> PruneReport:
    """Delete finished runs last updated before ``cutoff``, oldest first, but not those in ``keep``
    (:func:`runs_still_read`) nor the newest run of any job.

    A run goes with its events and its compute logs. The sqlite event log of
    a local instance keeps one file per run, which deleting the events empties
    but leaves on disk: that file is removed too.
    """
    newest_of_job: dict[str, str | None] = {}

    def spared(run: dg.DagsterRun) -> bool:
        if run.job_name not in newest_of_job:
            newest = instance.get_run_records(dg.RunsFilter(job_name=run.job_name), limit=1)
            newest_of_job[run.job_name] = newest[0].dagster_run.run_id if newest else None
        return run.run_id in keep or run.run_id == newest_of_job[run.job_name]

    old: list[str] = []
    kept, cursor = 0, None
    while len(old) < max_runs:
        old_runs = dg.RunsFilter(statuses=FINISHED, updated_before=cutoff)
        page = instance.get_run_records(old_runs, limit=_PAGE, cursor=cursor, ascending=True)
        for record in page:
            if spared(record.dagster_run):
                kept += 1
            elif len(old) < max_runs:
                old.append(record.dagster_run.run_id)
        if len(page) < _PAGE:
            break
        cursor = page[-1].dagster_run.run_id
    more = len(old) >= max_runs
    if dry_run:
        return PruneReport(cutoff, old, kept, more)
    errors: list[str] = []
    for run_id in old:
        instance.delete_run(run_id)
        error = _delete_run_files(instance, run_id)
        if error is not None:
            errors.append(error)
    return PruneReport(cutoff, old, kept, more, len(errors), errors[0] if errors else None)


def _delete_run_files(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """Remove a deleted run's sqlite event-log file and compute logs; why the logs stay, if they do."""
    shard_path = getattr(instance.event_log_storage, "path_for_shard", None)  # sqlite: one file per run
    if callable(shard_path):
        with contextlib.suppress(FileNotFoundError):
            os.remove(shard_path(run_id))
    try:
        instance.compute_log_manager.delete_logs(prefix=[run_id])
    except Exception as exc:  # noqa: BLE001 - any log store's failure: the run itself is gone all the same
        return f"{type(exc).__name__}: {exc}"
    return None


class PruneConfig(dg.Config):
    """One pass's limits; left unset, the age comes from the environment's ``automation`` settings."""

    days: float | None = Field(None, gt=0, description="delete finished runs last updated this many days ago")
    max_runs: int = Field(5_000, ge=1, description="delete at most this many runs in one pass")
    dry_run: bool = Field(False, description="only report what would be deleted")


def prune_job(settings: Settings) -> dg.JobDefinition:
    """The job that prunes the run history, with the environment's age as its default."""
    default_days = settings.automation.run_history_days

    @dg.op(
        name="prune_run_history",
        description=f"Delete finished runs older than {default_days} days (automation.run_history_days), "
        "keeping every run whose events are still read.",
    )
    def prune(context: dg.OpExecutionContext, config: PruneConfig) -> dg.Output[None]:
        days = config.days or default_days
        cutoff = datetime.now(UTC) - timedelta(days=days)
        keep = runs_still_read(context.instance) | {context.run_id}
        report = prune_run_history(
            context.instance, cutoff=cutoff, keep=keep, max_runs=config.max_runs, dry_run=config.dry_run
        )
        verb = "would delete" if config.dry_run else "deleted"
        context.log.info(f"{verb} {len(report.deleted)} runs last updated before {cutoff:%Y-%m-%d %H:%M} UTC")
        if report.compute_log_errors:
            context.log.warning(
                f"the compute logs of {report.compute_log_errors} deleted runs stay "
                f"({report.first_compute_log_error}); where they are on S3 and this role may not delete "
                "them, a lifecycle rule expires them (docs/dagster-instance.md, Run history)"
            )
        return dg.Output(
            None,
            metadata={
                "cutoff": dg.MetadataValue.timestamp(report.cutoff),
                "runs_deleted": 0 if config.dry_run else len(report.deleted),
                "runs_to_delete": len(report.deleted),
                "old_runs_kept": report.kept,
                "more_left": report.more,
                "compute_log_errors": report.compute_log_errors,
            },
        )

    @dg.job(
        name="prune_run_history_job",
        description="Bound the Dagster instance: delete old finished runs and their logs "
        "(defs/run_history.py).",
    )
    def job() -> None:
        prune()

    return job


def build_defs(settings: Settings) -> dg.Definitions:
    """The pruning job, and its nightly schedule.

    The schedule ships in the state of the sensors, not of the model-store
    schedules: the history it bounds is the sensors' runs, so wherever they
    run by themselves (a laptop's ``sn46 pipeline ui`` too), so does this.
    """
    job = prune_job(settings)
    running = sensor_status(settings.automation) == dg.DefaultSensorStatus.RUNNING
    schedule = dg.ScheduleDefinition(
        name="prune_run_history_schedule",
        job=job,
        cron_schedule="30 5 * * *",
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING if running else dg.DefaultScheduleStatus.STOPPED,
        description=f"Every night at 05:30 UTC: delete finished runs older than "
        f"{settings.automation.run_history_days} days, keeping those whose events are still read.",
    )
    return dg.Definitions(jobs=[job], schedules=[schedule])
