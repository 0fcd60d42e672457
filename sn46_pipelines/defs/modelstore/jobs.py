"""Jobs and schedules that make the model store run itself: nightly GC, chain verification, replica checks.

Each op is thin: it calls the model-store library, records what it found on
the ``model_store`` asset, and fails the run when the answer is bad (a corrupt
chain, a replica past its RPO, a policy GC cannot apply). Transient store
failures (an S3 outage that outlasts botocore's own retries, another GC
holding the lease) are retried with backoff by :data:`STORE_RETRY_POLICY`;
answers about the chain are final, so they are never retried.

GC safety against other GCs and commits comes from the library's lease, which
holds across processes and hosts. The GC op also claims the ``modelstore_gc``
pool so operators see GC runs queue in Dagster itself, one at a time once
they run ``dagster instance concurrency set modelstore_gc 1``. Every GC run
also carries :data:`GC_STORE_TAG` naming its model store, which the production
run queue limits to one run per store (``deploy/dagster.prod.yaml``), so GC
runs of several stores sharing one instance do not wait for each other.

On ECS and Kubernetes, GC and replication runs take the ``gc`` and
``replication`` roles rather than the run launcher's (pipeline) identity,
which may not delete blobs or write the replica: see
:mod:`sn46_pipelines.deploy.run_roles`.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC

import dagster as dg
from pydantic import Field

from ...config import GC_PRESETS, GCPolicy, Settings, load_settings
from ...deploy.run_roles import k8s_step_role_tags, run_role_tags
from ...errors import is_transient
from ...modelstore import collect_garbage, verify
from ...modelstore.layout import version_id
from ...modelstore.replication import check_replication
from ...modelstore.stats import store_stats
from ..automation import schedule_status
from ..resources import ModelStoreResource
from .observations import gc_observation, model_store, replication_observation, verify_observation

#: Instance concurrency pool of GC runs (limit it to 1 per instance).
GC_POOL = "modelstore_gc"

#: Run tag on GC runs whose value is the model store's URL; the run queue allows one run per value.
GC_STORE_TAG = "sn46/gc-store"

#: Recovery point objective of the model store's replica: a replica more than 15 minutes behind is reported.
RPO_SECONDS = 15 * 60

#: Hour (UTC) of the nightly deep verification: after the 02:00 GC, so it checks what GC left.
DEEP_VERIFY_HOUR = 3

#: Hour (UTC) of the nightly deep replica check: after deep verification has vouched for the primary.
DEEP_REPLICATION_HOUR = 4

#: Retries of transient store failures after about 30 s, 90 s and 210 s (each +-30 s): over five
#: minutes of outage ridden out, and a GC lease that a failed attempt could not release (60 s TTL)
#: has expired by the second retry.
STORE_RETRY_POLICY = dg.RetryPolicy(
    max_retries=3, delay=30, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS
)

_PRESETS = ", ".join(f"{name} ({keep}/{keep_min})" for name, (keep, keep_min) in GC_PRESETS.items())


@contextmanager
def _retry_only_transient() -> Iterator[None]:
    """Let outages reach the retry policy; turn any other error into a final failure.

    Retrying is decided by inclusion (:func:`~sn46_pipelines.errors.is_transient`):
    a store out of reach, or another GC holding the lease. Access denied, a
    missing bucket or a corrupt chain fail at once: asking again changes nothing.
    """
    try:
        yield
    except Exception as exc:
        if is_transient(exc):
            raise
        raise dg.Failure(description=f"{type(exc).__name__}: {exc}", allow_retries=False) from exc


class GCConfig(dg.Config):
    """One GC run's retention; whatever is left unset comes from the environment's ``gc`` policy."""

    preset: str | None = Field(None, description=f"Sets both counts: {_PRESETS}.")
    keep_versions: int | None = Field(None, description="Newest versions kept live (overrides the preset).")
    keep_min_versions: int | None = Field(
        None, description="Refuse (deleting nothing) if fewer would stay live; overrides the preset."
    )
    protect_tags: list[int] = Field(
        default_factory=list, description="Version counters kept live, in addition to the environment's."
    )
    dry_run: bool = Field(False, description="Report what would be collected; delete nothing.")


def gc_policy(config: GCConfig, environment: GCPolicy) -> GCPolicy:
    """The run's retention: a preset replaces the environment's counts, explicit counts replace both.

    Protected versions add to the environment's: a run may protect more, never
    less. Pinned versions and the head are always kept by the library.
    """
    if config.preset is not None:
        counts: dict[str, object] = {"preset": config.preset}
    else:
        counts = {
            "keep_versions": environment.keep_versions,
            "keep_min_versions": environment.keep_min_versions,
        }
    explicit = {"keep_versions": config.keep_versions, "keep_min_versions": config.keep_min_versions}
    counts.update({name: value for name, value in explicit.items() if value is not None})
    protect = sorted({*environment.protect_tags, *config.protect_tags})
    return GCPolicy.model_validate({**counts, "protect_tags": protect})


@dg.op(
    out={},
    pool=GC_POOL,
    tags=k8s_step_role_tags("gc"),
    description="Collect versions outside the retention policy; pins stay.",
)
def model_store_gc(
    context: dg.OpExecutionContext, config: GCConfig, model_store: ModelStoreResource
) -> Iterator[dg.AssetObservation]:
    with _retry_only_transient():
        policy = gc_policy(config, load_settings().gc)
        store = model_store.open()
        started = time.monotonic()
        result = collect_garbage(
            store,
            keep_versions=policy.keep_versions,
            keep_min_versions=policy.keep_min_versions,
            protect=policy.protect_tags,
            dry_run=config.dry_run,
        )
        duration = time.monotonic() - started
        stats = store_stats(store)
    context.log.info(
        f"{store.url}: {'would collect' if result.dry_run else 'collected'} {len(result.collected)} versions "
        f"({result.bytes_freed} bytes); {len(result.live)} live"
    )
    yield gc_observation(result, stats, policy=policy, duration_s=duration)


class VerifyConfig(dg.Config):
    deep: bool = Field(False, description="Also re-hash every live blob (reads every checkpoint byte).")


#: The asset checks on ``model_store``: each verification and replica check records its answer there.
CHAIN_CHECK = "chain_valid"
REPLICA_CHECK = "replica_within_rpo"


@dg.multi_asset_check(
    name="model_store_verify",
    specs=[
        dg.AssetCheckSpec(
            CHAIN_CHECK,
            asset=model_store.key,
            description="Every record's hash chains to its parent (deep: every live blob re-hashed).",
        )
    ],
    description="Check the hash chain; a corrupt chain fails the check and the run, naming the first "
    "bad version.",
)
def model_store_verify(
    context: dg.OpExecutionContext, config: VerifyConfig, model_store: ModelStoreResource
) -> Iterator[dg.AssetCheckResult | dg.AssetObservation]:
    with _retry_only_transient():
        store = model_store.open()
        report = verify(store, deep=config.deep)
    yield verify_observation(report)
    depth = "deep" if report.deep else "shallow"
    yield dg.AssetCheckResult(
        check_name=CHAIN_CHECK,
        passed=report.valid,
        description=None
        if report.valid
        else f"corrupt from {report.first_bad} ({report.kind}): {report.detail}",
        metadata={"verification": depth, "versions": report.versions, "bytes_hashed": report.bytes_hashed},
    )
    if not report.valid:
        raise dg.Failure(
            description=(
                f"{store.url}: chain corrupt from {report.first_bad} ({report.kind}): {report.detail}"
            ),
            metadata={"first_bad_version": report.first_bad, "corruption_kind": report.kind},
            allow_retries=False,
        )
    context.log.info(f"{store.url}: {report.versions} versions valid ({depth} verification)")


class ReplicationConfig(dg.Config):
    repair: bool = Field(
        default=False,
        description="Copy what the replica lacks or holds corrupt (blobs, markers, records), "
        "then check again.",
    )
    deep: bool = Field(
        default=False,
        description="Compare every record byte for byte and re-hash every live replica blob "
        "(reads the replica's whole live content).",
    )
    rpo_seconds: int = Field(
        default=RPO_SECONDS,
        ge=0,
        description="Fail when the oldest commit the replica lacks is older than this.",
    )


@dg.multi_asset_check(
    name="model_store_replication",
    specs=[
        dg.AssetCheckSpec(
            REPLICA_CHECK,
            asset=model_store.key,
            description="The replica holds the primary's chain, at most the RPO behind, never diverging.",
        )
    ],
    op_tags=k8s_step_role_tags("replication"),
    description="Compare the replica with the primary; fail if it diverges or lags past the RPO.",
)
def model_store_replication(
    context: dg.OpExecutionContext, config: ReplicationConfig, model_store: ModelStoreResource
) -> Iterator[dg.AssetCheckResult | dg.AssetObservation]:
    with _retry_only_transient():
        primary, replica = model_store.open(), model_store.open_replica()
        report = check_replication(primary, replica, repair=config.repair, deep=config.deep)
    yield replication_observation(report, replica_url=replica.url, rpo_seconds=config.rpo_seconds)
    problem = None
    if report.diverged_at is not None:
        problem = f"diverges from the primary at {version_id(report.diverged_at)}"
    elif report.corrupt_records or report.corrupt_blobs:
        problem = (
            f"holds {len(report.corrupt_records)} corrupt records and {len(report.corrupt_blobs)} corrupt "
            "blobs (run it with repair: true)"
        )
    elif report.lag_seconds > config.rpo_seconds:
        problem = (
            f"is {report.lag_versions} versions and {report.lag_seconds:.0f} s behind, "
            f"past the RPO of {config.rpo_seconds} s"
        )
    yield dg.AssetCheckResult(
        check_name=REPLICA_CHECK,
        passed=problem is None,
        description=problem,
        metadata={
            "replica_lag_versions": report.lag_versions,
            "replica_lag_seconds": round(report.lag_seconds, 1),
            "rpo_seconds": config.rpo_seconds,
            "verification": "deep" if report.deep else "shallow",
        },
    )
    if problem:
        raise dg.Failure(
            description=f"replica {replica.url} {problem}",
            metadata={"replica_lag_versions": report.lag_versions, "replica_lag_seconds": report.lag_seconds},
            allow_retries=False,
        )
    if not report.in_sync:
        context.log.warning(
            f"replica {replica.url} lags {report.lag_versions} versions ({report.lag_seconds} s), "
            f"within the RPO; {len(report.missing_blobs)} blobs missing"
        )


def gc_job(settings: Settings) -> dg.JobDefinition:
    """GC by policy, tagged with the store it collects (the run queue allows one GC per store)."""

    @dg.job(
        name="gc_job",
        op_retry_policy=STORE_RETRY_POLICY,
        # The code location's environment names the store, as it does for the run's resource; a run whose
        # launchpad config points ``model_store`` elsewhere should set this tag to that store too.
        tags={GC_STORE_TAG: settings.model_store, **run_role_tags("gc")},
        description="Garbage-collect the model store by policy.",
    )
    def job() -> None:
        model_store_gc()

    return job


verify_chain_job = dg.define_asset_job(
    "verify_chain_job",
    selection=dg.AssetSelection.checks(model_store_verify),
    op_retry_policy=STORE_RETRY_POLICY,
    description="Verify the model store's chain, shallow or deep (the chain_valid check of model_store).",
)

replication_check_job = dg.define_asset_job(
    "replication_check_job",
    selection=dg.AssetSelection.checks(model_store_replication),
    op_retry_policy=STORE_RETRY_POLICY,
    tags=run_role_tags("replication"),
    description="Check (optionally repair) the store's replica: the replica_within_rpo check.",
)


def schedules(settings: Settings, gc: dg.JobDefinition) -> list[dg.ScheduleDefinition]:
    """Nightly GC, hourly chain verification (deep at 03:00), the 15-minute replica check (deep at 04:00)."""
    status = schedule_status(settings.automation)
    nightly_gc = dg.ScheduleDefinition(
        name="nightly_gc_schedule",
        job=gc,
        cron_schedule="0 2 * * *",
        execution_timezone="UTC",
        default_status=status,
        description="GC every night at 02:00 UTC with the environment's retention policy.",
    )
    chain = dg.ScheduleDefinition(
        name="chain_verification_schedule",
        job=verify_chain_job,
        cron_schedule="0 * * * *",
        execution_timezone="UTC",
        execution_fn=chain_verification_request,
        default_status=status,
        description="Shallow verification every hour; deep (every live blob re-hashed) at 03:00 UTC, "
        "after nightly GC.",
    )
    replica = dg.ScheduleDefinition(
        name="replication_check_schedule",
        job=replication_check_job,
        cron_schedule="*/15 * * * *",
        execution_timezone="UTC",
        execution_fn=replication_check_request,
        default_status=status,
        description="Check the replica every 15 minutes, the store's RPO; deep (every record compared, "
        "every replica blob re-hashed) at 04:00 UTC, after deep verification of the primary.",
    )
    return [nightly_gc, chain, replica]


def _at(context: dg.ScheduleEvaluationContext, hour: int) -> bool:
    """True on the tick at ``hour``:00 UTC."""
    when = context.scheduled_execution_time
    return when is not None and (when.astimezone(UTC).hour, when.minute) == (hour, 0)


def chain_verification_request(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """Shallow verification every hour; deep at :data:`DEEP_VERIFY_HOUR` UTC."""
    deep = _at(context, DEEP_VERIFY_HOUR)
    return dg.RunRequest(
        run_config=dg.RunConfig(ops={"model_store_verify": VerifyConfig(deep=deep)}),
        tags={"sn46/verify": "deep" if deep else "shallow"},
    )


def replication_check_request(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    """The quick replica check every 15 minutes; the deep one at :data:`DEEP_REPLICATION_HOUR` UTC.

    Only the deep tick carries run config, so the others run with the job's defaults (RPO included).
    """
    if not _at(context, DEEP_REPLICATION_HOUR):
        return dg.RunRequest(tags={"sn46/replication": "shallow"})
    return dg.RunRequest(
        run_config=dg.RunConfig(ops={"model_store_replication": ReplicationConfig(deep=True)}),
        tags={"sn46/replication": "deep"},
    )
