"""Store metrics: storage bytes, version counts, commit latency and GC totals.

These are the numbers a dashboard needs (``*_storage_size_bytes``,
``*_version_count``, ``*_commit_latency_seconds``, ``*_gc_versions_deleted_total``,
``*_gc_bytes_freed_total``), computed from listings plus a handful of audit
events, never by reading checkpoint bytes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from . import audit
from .gc import DEFAULT_ORPHAN_GRACE, find_leftovers
from .layout import AUDIT, BLOBS, RECORDS
from .store import ModelStore


@dataclass(frozen=True, slots=True)
class StoreStats:
    storage_bytes: int
    blob_bytes: int
    blob_count: int
    record_bytes: int
    versions: int
    live_versions: int
    collected_versions: int
    head: str | None
    last_commit_latency_s: float | None
    last_commit_at: str | None
    gc_runs: int
    gc_versions_deleted_total: int
    gc_bytes_freed_total: int
    last_gc_duration_s: float | None
    audit_events: int
    #: Unfinished writes (staging files, incomplete multipart uploads) idle past the grace period.
    leftovers: int = 0
    leftover_bytes: int = 0
    leftovers_error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def store_stats(store: ModelStore, *, leftover_grace: float = DEFAULT_ORPHAN_GRACE) -> StoreStats:
    """Current metrics of ``store`` (one listing of the store plus the last commit and GC events).

    Leftovers idle for over ``leftover_grace`` seconds are counted: what the next GC would remove.
    """
    store.objects.check()
    total = blob_bytes = blob_count = record_bytes = events = 0
    for info in store.objects.list():
        total += info.size
        if info.key.startswith(BLOBS):
            blob_bytes += info.size
            blob_count += 1
        elif info.key.startswith(RECORDS):
            record_bytes += info.size
        elif info.key.startswith(AUDIT):
            events += 1
    versions = len(store.record_counters())
    collected = len(store.collected_counters())
    head = store.head()
    commit_keys = audit.event_keys(store.objects, "commit")
    last_commit = audit.read_event(store.objects, commit_keys[-1]) if commit_keys else None
    gc_runs = list(audit.events(store.objects, "gc"))
    leftovers, leftovers_error = find_leftovers(store, leftover_grace)
    return StoreStats(
        storage_bytes=total,
        blob_bytes=blob_bytes,
        blob_count=blob_count,
        record_bytes=record_bytes,
        versions=versions,
        live_versions=versions - collected,
        collected_versions=collected,
        head=head.version_id if head else None,
        last_commit_latency_s=last_commit.what.get("latency_s") if last_commit else None,
        last_commit_at=last_commit.when if last_commit else None,
        gc_runs=len(gc_runs),
        gc_versions_deleted_total=sum(len(e.what.get("collected", ())) for e in gc_runs),
        gc_bytes_freed_total=sum(e.what.get("bytes_freed", 0) for e in gc_runs),
        last_gc_duration_s=gc_runs[-1].what.get("duration_s") if gc_runs else None,
        audit_events=events,
        leftovers=len(leftovers),
        leftover_bytes=sum(leftover.size for leftover in leftovers),
        leftovers_error=leftovers_error,
    )
