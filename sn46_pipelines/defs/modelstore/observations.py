"""``model_store``: the hash-chained model store as a Dagster asset, and what each operation records on it.

Training runs and people (moving pins) write the store outside Dagster, so it
is an external asset that the operations jobs *observe*. Every GC,
verification and replication run records one observation whose metadata keys
never change between runs, so the asset's plots show storage, live and
collected versions, bytes freed, the first corrupt version and replica lag
over time.
"""

import dagster as dg

from ...config import GCPolicy
from ...modelstore import GCResult, VerifyReport
from ...modelstore.replication import ReplicationReport
from ...modelstore.stats import StoreStats

model_store = dg.AssetSpec(
    "model_store",
    group_name="model_store",
    owners=["team:ml"],
    kinds={"s3"},
    description="The hash-chained model store (checkpoints, records, pins). Written by training; "
    "observed by nightly GC, hourly chain verification and the 15-minute replica check.",
)


def gc_observation(
    result: GCResult, stats: StoreStats, *, policy: GCPolicy, duration_s: float
) -> dg.AssetObservation:
    """A GC run: what it collected and freed under which policy, and the store as it left it."""
    return dg.AssetObservation(
        asset_key=model_store.key,
        description=f"GC ({'dry run' if result.dry_run else 'collected'}): "
        f"{len(result.collected)} versions, {result.bytes_freed} bytes",
        metadata={
            "operation": "gc",
            "storage_bytes": stats.storage_bytes,
            "versions": stats.versions,
            "versions_live": stats.live_versions,
            "versions_collected": stats.collected_versions,
            "head": stats.head,
            "gc_dry_run": result.dry_run,
            "gc_versions_collected": len(result.collected),
            "gc_collected": result.collected,
            "gc_spared": result.spared,
            "gc_bytes_freed": result.bytes_freed,
            "gc_blobs_deleted": result.blobs_deleted,
            "gc_orphans_deleted": result.orphans_deleted,
            "gc_leftovers": result.leftovers,
            "gc_leftover_bytes": result.leftover_bytes,
            "gc_duration_s": round(duration_s, 3),
            "keep_versions": policy.keep_versions,
            "keep_min_versions": policy.keep_min_versions,
            "protect_tags": list(policy.protect_tags),
            "preset": policy.preset,
        },
    )


def verify_observation(report: VerifyReport) -> dg.AssetObservation:
    """A chain verification: valid or not, and if not, the first bad version and what is wrong with it."""
    return dg.AssetObservation(
        asset_key=model_store.key,
        description=f"{'deep' if report.deep else 'shallow'} verification: "
        + ("chain valid" if report.valid else f"corrupt from {report.first_bad} ({report.kind})"),
        metadata={
            "operation": "verify",
            "chain_valid": report.valid,
            "verify_deep": report.deep,
            "first_bad_version": report.first_bad,
            "corruption_kind": report.kind,
            "corruption_detail": report.detail,
            "versions": report.versions,
            "versions_live": report.live,
            "versions_collected": report.collected,
            "blobs_checked": report.blobs_checked,
            "bytes_hashed": report.bytes_hashed,
        },
    )


def replication_observation(
    report: ReplicationReport, *, replica_url: str, rpo_seconds: int
) -> dg.AssetObservation:
    """A replica check: how far the replica is behind, against the RPO, and what a repair copied."""
    return dg.AssetObservation(
        asset_key=model_store.key,
        description=f"replica {replica_url}: "
        + ("in sync" if report.in_sync else f"{report.lag_versions} versions, {report.lag_seconds} s behind"),
        metadata={
            "operation": "replication_check",
            "replica": replica_url,
            "replica_in_sync": report.in_sync,
            "replica_lag_versions": report.lag_versions,
            "replica_lag_seconds": report.lag_seconds,
            "rpo_seconds": rpo_seconds,
            "primary_head": report.primary_head,
            "replica_head": report.replica_head,
            "replica_missing_blobs": len(report.missing_blobs),
            "replica_missing_markers": len(report.missing_markers),
            "replica_diverged_at": report.diverged_at,
            "replica_deep": report.deep,
            "replica_corrupt_records": len(report.corrupt_records),
            "replica_corrupt_blobs": len(report.corrupt_blobs),
            "replica_bytes_hashed": report.bytes_hashed,
            "repaired_records": report.repaired.get("records", 0),
            "repaired_blobs": report.repaired.get("blobs", 0),
        },
    )
