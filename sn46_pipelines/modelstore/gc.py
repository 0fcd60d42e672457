"""Garbage collection: delete the files of old versions, keep their records.

Live versions are the newest ``keep_versions``, the protected counters, every
pinned version and always the head. A collected version keeps its record (so
the hash chain still verifies) and gains a ``collected/`` marker, written
*before* its blobs are deleted; a blob still used by a live version stays.
Blobs no record uses (left by crashed or losing commits) are deleted once
older than a grace period, so an upload in flight is never hit. So are the
store's leftovers (:meth:`ObjectStore.leftovers`): staging files of killed
writers on a folder store, incomplete multipart uploads on S3, which hold
space without being objects.

Racing commits are safe: a commit announces its blobs in ``inflight/`` and
waits while a GC holds the lease before trusting blobs that already exist,
and GC re-reads intents, pins and the head after marking and before deleting.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from ..objectstore import AccessDeniedError, Leftover, ObjectInfo
from . import audit
from .errors import GCRefusedError, InvalidRecordError
from .layout import BLOBS, INFLIGHT, collected_key, sha_of_blob_key, version_id
from .lease import Lease
from .pins import PinMode, read_pins
from .record import canonical_json
from .store import ModelStore

DEFAULT_ORPHAN_GRACE = 3600.0
#: An intent older than this belongs to a commit that died; its blobs lose their protection.
DEFAULT_INTENT_TTL = 24 * 3600.0


@dataclass(slots=True)
class GCResult:
    """What a GC run did (or, with ``dry_run``, would do)."""

    dry_run: bool
    collected: list[int]
    live: list[int]
    bytes_freed: int = 0
    blobs_deleted: int = 0
    orphans_deleted: int = 0
    stale_intents_deleted: int = 0
    spared: list[int] = field(default_factory=list)
    #: Unfinished writes past the grace period (removed unless ``dry_run``) and the bytes they held.
    leftovers: int = 0
    leftover_bytes: int = 0
    #: Why leftovers could not be listed (this identity may not), or ``None``.
    leftovers_error: str | None = None
    #: Wall time of the run, planning and deleting (exported as ``gc_run_duration_seconds``).
    duration_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "collected": self.collected,
            "live": self.live,
            "bytes_freed": self.bytes_freed,
            "blobs_deleted": self.blobs_deleted,
            "orphans_deleted": self.orphans_deleted,
            "stale_intents_deleted": self.stale_intents_deleted,
            "spared": self.spared,
            "leftovers": self.leftovers,
            "leftover_bytes": self.leftover_bytes,
            "leftovers_error": self.leftovers_error,
            "duration_s": self.duration_s,
        }


def collect_garbage(
    store: ModelStore,
    *,
    keep_versions: int,
    keep_min_versions: int = 1,
    protect: Iterable[int] = (),
    dry_run: bool = False,
    orphan_grace: float = DEFAULT_ORPHAN_GRACE,
    intent_ttl: float = DEFAULT_INTENT_TTL,
) -> GCResult:
    """Collect versions outside the policy; refuse (deleting nothing) below ``keep_min_versions``.

    ``orphan_grace``: unreferenced blobs and unfinished writes younger than this stay (an upload
    may be in flight).
    ``intent_ttl``: commit intents older than this are taken as left by dead commits.
    """
    if keep_versions < 1 or keep_min_versions < 0 or orphan_grace < 0 or intent_ttl < 0:
        raise InvalidRecordError(
            "keep_versions must be >= 1; keep_min_versions, orphan_grace, intent_ttl >= 0"
        )
    policy = (keep_versions, keep_min_versions, set(protect), orphan_grace, intent_ttl)
    if dry_run:
        return _run(store, *policy, None)
    with Lease(store.objects) as held:
        return _run(store, *policy, held)


def _run(
    store: ModelStore,
    keep: int,
    keep_min: int,
    protect: set[int],
    grace: float,
    intent_ttl: float,
    held: Lease | None,
) -> GCResult:
    started = time.monotonic()
    head = store.head_counter()  # before listing: records committed in between are then listed, hence live
    counters = store.record_counters()
    already = store.collected_counters()
    keep_set = set(range(max(0, head - keep + 1), head + 1)) | protect | _pinned(store, head) | {head}
    candidates = [c for c in counters if c <= head and c not in keep_set and c not in already]
    live = [c for c in counters if c not in already and c not in candidates]
    if candidates and len(live) < keep_min:
        raise GCRefusedError(
            f"GC would leave {len(live)} live versions, fewer than keep_min_versions={keep_min}; "
            "nothing deleted"
        )
    manifests = {r.counter: {e.sha256 for e in r.manifest.values()} for r in store.records(live + candidates)}
    live_blobs = set().union(*(manifests[c] for c in live))
    if held is not None:
        held.renew()
    now = datetime.now(UTC)
    intents, stale_intents = _intents(store, now - timedelta(seconds=intent_ttl))
    blobs = {sha: info for info in store.objects.list(BLOBS) if (sha := sha_of_blob_key(info.key))}
    result = GCResult(dry_run=held is None, collected=candidates, live=live)

    if held is not None:
        for counter in candidates:
            store.objects.put(
                collected_key(counter),
                canonical_json({"version_id": version_id(counter), "collected_at": now.isoformat()}),
            )
        held.renew()
        # Anything that changed while we marked: new pins, new commits, new intents.
        new_head = store.head_counter()
        spared = [c for c in candidates if c in _pinned(store, new_head)]
        for counter in spared:
            store.objects.delete(collected_key(counter))
        result.spared = spared
        result.collected = [c for c in candidates if c not in spared]
        result.live = sorted(set(live) | set(spared))
        for record in store.records(range(max(counters, default=head) + 1, new_head + 1)):
            live_blobs |= {e.sha256 for e in record.manifest.values()}
        live_blobs |= set().union(*(manifests[c] for c in spared))
        intents |= _intents(store, now - timedelta(seconds=intent_ttl))[0]

    collected_blobs = set().union(*(manifests[c] for c in result.collected)) - live_blobs - intents
    referenced = live_blobs | intents | set().union(*manifests.values())
    doomed = [blobs[s] for s in collected_blobs if s in blobs]
    orphans = [i for s, i in blobs.items() if s not in referenced and _older(i, now, grace)]
    result.blobs_deleted = len(doomed) + len(orphans)
    result.orphans_deleted = len(orphans)
    result.stale_intents_deleted = len(stale_intents)
    result.bytes_freed = sum(i.size for i in doomed + orphans)
    leftovers, result.leftovers_error = find_leftovers(store, grace)
    result.leftovers, result.leftover_bytes = len(leftovers), sum(leftover.size for leftover in leftovers)
    if held is None:
        result.duration_s = round(time.monotonic() - started, 6)
        return result

    held.renew(force=True)
    store.objects.delete_many([i.key for i in doomed + orphans] + stale_intents)
    for leftover in leftovers:
        store.objects.remove_leftover(leftover)
    result.duration_s = round(time.monotonic() - started, 6)
    audit.append_event(store.objects, "gc", result.to_dict())
    return result


def find_leftovers(store: ModelStore, grace: float) -> tuple[list[Leftover], str | None]:
    """Unfinished writes idle past ``grace``; or none, and why, when this identity may not list them.

    Listing multipart uploads is its own S3 permission: an identity without it
    still collects versions and orphans, and the run says what it could not see.
    """
    try:
        return store.objects.leftovers(older_than=grace), None
    except AccessDeniedError as exc:
        return [], str(exc)


def _pinned(store: ModelStore, head: int) -> set[int]:
    return {head if p.mode == PinMode.TRACKING else p.counter for p in read_pins(store).values()}  # type: ignore[misc]


def _intents(store: ModelStore, stale_before: datetime) -> tuple[set[str], list[str]]:
    """Blobs announced by commits in flight, and the keys of intents left by crashed commits."""
    fresh: list[str] = []
    stale: list[str] = []
    for info in store.objects.list(INFLIGHT):
        (stale if info.mtime < stale_before else fresh).append(info.key)
    blobs: set[str] = set()
    for _, data in store.fetch_raw(fresh):
        if data is not None:
            blobs.update(json.loads(data).get("blobs", ()))
    return blobs, stale


def _older(info: ObjectInfo, now: datetime, grace: float) -> bool:
    return (now - info.mtime).total_seconds() > grace
