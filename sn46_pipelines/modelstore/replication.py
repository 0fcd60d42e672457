"""Replication check and repair between a primary model store and its disaster-recovery replica.

Because each record carries its parent's hash, equal ``record_hash`` at one
counter means equal history up to it: comparing the replica's newest record
with the primary's record at that counter proves (or disproves) the whole
common prefix in two GETs. Missing blobs come from one listing of each side.
Repair copies blobs first, then collected markers, then records oldest first,
so the replica is a valid chain at every moment of the repair.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..objectstore import PreconditionFailedError
from . import audit
from .errors import ModelStoreError
from .layout import BLOBS, blob_key, collected_key, record_key, sha_of_blob_key, version_id
from .store import ModelStore


@dataclass(slots=True)
class ReplicationReport:
    """How far the replica is behind the primary (``lag_seconds`` is the RPO: age of the oldest unreplicated commit)."""

    in_sync: bool
    missing_versions: list[int]
    missing_blobs: list[str]
    missing_markers: list[int]
    diverged_at: int | None
    lag_versions: int
    lag_seconds: float
    primary_head: int
    replica_head: int
    repaired: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_replication(primary: ModelStore, replica: ModelStore, *, repair: bool = False) -> ReplicationReport:
    """Compare ``replica`` with ``primary``; with ``repair``, copy what is missing and compare again."""
    report = _compare(primary, replica)
    if not repair or report.in_sync:
        return report
    if report.diverged_at is not None:
        raise ModelStoreError(
            f"{replica.url} diverges from {primary.url} at {version_id(report.diverged_at)}; "
            "refusing to overwrite history (inspect both chains)"
        )
    copied = _repair(primary, replica, report)
    again = _compare(primary, replica)
    again.repaired = copied
    return again


def _compare(primary: ModelStore, replica: ModelStore) -> ReplicationReport:
    primary.objects.check()
    replica.objects.check()
    p_counters = primary.record_counters()
    r_counters = set(replica.record_counters())
    p_head = primary.head_counter()
    r_head = max(r_counters, default=-1)
    diverged = _first_divergence(primary, replica, min(p_head, r_head))
    missing_versions = [c for c in p_counters if c not in r_counters]
    p_collected = primary.collected_counters()
    r_collected = replica.collected_counters()
    live = [c for c in p_counters if c not in p_collected]
    wanted = {e.sha256: e.size for r in primary.records(live) for e in r.manifest.values()}
    have = {sha: i.size for i in replica.objects.list(BLOBS) if (sha := sha_of_blob_key(i.key))}
    missing_blobs = sorted(sha for sha, size in wanted.items() if have.get(sha) != size)
    missing_markers = sorted(p_collected - r_collected)
    lag_seconds = 0.0
    if missing_versions:
        oldest = primary.get(missing_versions[0])
        lag_seconds = max(0.0, (datetime.now(timezone.utc) - oldest.created_at).total_seconds())
    return ReplicationReport(
        in_sync=not (missing_versions or missing_blobs or missing_markers) and diverged is None,
        missing_versions=missing_versions,
        missing_blobs=missing_blobs,
        missing_markers=missing_markers,
        diverged_at=diverged,
        lag_versions=max(0, p_head - r_head),
        lag_seconds=round(lag_seconds, 3),
        primary_head=p_head,
        replica_head=r_head,
    )


def _first_divergence(primary: ModelStore, replica: ModelStore, common: int) -> int | None:
    """The first counter where the chains differ, by bisection over hash-chained records."""
    if common < 0 or primary.get(common).record_hash == replica.get(common).record_hash:
        return None
    low, high = -1, common  # records agree at low (or it is -1), differ at high
    while high - low > 1:
        mid = (low + high) // 2
        if primary.get(mid).record_hash == replica.get(mid).record_hash:
            low = mid
        else:
            high = mid
    return high


def _repair(primary: ModelStore, replica: ModelStore, report: ReplicationReport) -> dict[str, int]:
    for sha in report.missing_blobs:
        with primary.objects.open(blob_key(sha)) as stream:
            replica.objects.put(blob_key(sha), stream)
    for counter in report.missing_markers:
        replica.objects.put(collected_key(counter), primary.objects.get(collected_key(counter)))
    records = 0
    for counter in report.missing_versions:
        data = primary.objects.get(record_key(counter))
        try:
            replica.objects.put_if_absent(record_key(counter), data)
            records += 1
        except PreconditionFailedError:
            if replica.objects.get(record_key(counter)) != data:
                raise ModelStoreError(f"{replica.url}: {version_id(counter)} was written elsewhere meanwhile") from None
    if report.missing_versions:
        replica.advance_hint(primary.get(report.missing_versions[-1]))
    copied = {"blobs": len(report.missing_blobs), "markers": len(report.missing_markers), "records": records}
    audit.append_event(replica.objects, "repair", {"primary": primary.url, **copied})
    return copied
