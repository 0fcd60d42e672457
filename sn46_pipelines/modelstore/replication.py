"""Replication check and repair between a primary model store and its disaster-recovery replica.

Because each record carries its parent's hash, equal ``record_hash`` at one
counter means equal history up to it: comparing the replica's newest record
with the primary's record at that counter proves (or disproves) the whole
common prefix in two GETs. Missing blobs come from one listing of each side.

That quick check trusts what the replica's objects *claim*: a record whose
body was edited but whose ``record_hash`` field was kept, or a blob with one
flipped byte and the right size, passes it. The deep check (nightly) trusts
nothing: it compares every replica record byte for byte with the primary's
(whose chain it verifies first) and re-hashes every replica blob a live
version names, so what it calls in sync also passes ``verify --deep`` on the
replica.

Repair copies blobs first (each one hashed on its way, through a local file,
so a bad primary blob is never written), then collected markers, then
records oldest first, so the replica is a valid chain at every moment of the
repair. Corrupt replica records are replaced by the primary's bytes, never a
record that the replica holds validly with other content: that is
divergence, which repair refuses.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..objectstore import NotFoundError, PreconditionFailedError
from . import audit
from .errors import IntegrityError, ModelStoreError
from .hashing import copy_and_hash, hash_stream
from .layout import BLOBS, blob_key, collected_key, record_key, sha_of_blob_key, version_id
from .record import VersionRecord
from .store import ModelStore
from .verify import check_chain, check_record

#: Replica blobs re-hashed at once by a deep check (hashing and reading both release the GIL).
HASH_WORKERS = 4


@dataclass(slots=True)
class ReplicationReport:
    """How far the replica is behind the primary, and (deep) what it holds that is not what it claims.

    ``lag_seconds`` is the RPO measure: the age of the oldest commit the replica lacks.
    """

    in_sync: bool
    missing_versions: list[int]
    missing_blobs: list[str]
    missing_markers: list[int]
    diverged_at: int | None
    lag_versions: int
    lag_seconds: float
    primary_head: int
    replica_head: int
    deep: bool = False
    #: Replica records whose bytes differ from the primary's and that do not verify on their own.
    corrupt_records: list[int] = field(default_factory=list)
    #: Replica blobs of the right size whose content does not hash to their key.
    corrupt_blobs: list[str] = field(default_factory=list)
    bytes_hashed: int = 0
    repaired: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def check_replication(
    primary: ModelStore, replica: ModelStore, *, repair: bool = False, deep: bool = False
) -> ReplicationReport:
    """Compare ``replica`` with ``primary``; ``repair`` copies what is missing or corrupt, then compares.

    ``deep`` re-reads every record on both sides and re-hashes every replica
    blob that a live version names (it reads the replica's whole live content).
    """
    if repair:
        replica.objects.create_if_missing()  # a new replica is seeded by its first repair
    report = _compare(primary, replica, deep=deep)
    if not repair or report.in_sync:
        return report
    if report.diverged_at is not None:
        raise ModelStoreError(
            f"{replica.url} diverges from {primary.url} at {version_id(report.diverged_at)}; "
            "refusing to overwrite history (inspect both chains)"
        )
    copied = _repair(primary, replica, report)
    again = _compare(primary, replica, deep=deep)
    again.repaired = copied
    return again


def _compare(primary: ModelStore, replica: ModelStore, *, deep: bool) -> ReplicationReport:
    primary.objects.check()
    replica.objects.check()
    p_counters = primary.record_counters()
    r_counters = set(replica.record_counters())
    p_head = primary.head_counter()
    r_head = max(r_counters, default=-1)
    corrupt_records: list[int] = []
    if deep:
        p_records, diverged, corrupt_records = _compare_records(primary, replica, p_counters, r_counters)
    else:
        diverged = _first_divergence(primary, replica, min(p_head, r_head))
        p_records = None
    missing_versions = [c for c in p_counters if c not in r_counters]
    p_collected = primary.collected_counters()
    r_collected = replica.collected_counters()
    live = [c for c in p_counters if c not in p_collected]
    live_records = [p_records[c] for c in live] if p_records is not None else primary.records(live)
    wanted = {e.sha256: e.size for r in live_records for e in r.manifest.values()}
    have = {sha: i.size for i in replica.objects.list(BLOBS) if (sha := sha_of_blob_key(i.key))}
    missing_blobs = sorted(sha for sha, size in wanted.items() if have.get(sha) != size)
    corrupt_blobs: list[str] = []
    bytes_hashed = 0
    if deep:
        present = [sha for sha in sorted(wanted) if sha not in missing_blobs]
        corrupt_blobs, vanished, bytes_hashed = _rehash(replica, present)
        missing_blobs = sorted({*missing_blobs, *vanished})
    missing_markers = sorted(p_collected - r_collected)
    lag_seconds = 0.0
    if missing_versions:
        oldest = primary.get(missing_versions[0])
        lag_seconds = max(0.0, (datetime.now(UTC) - oldest.created_at).total_seconds())
    problems = missing_versions or missing_blobs or missing_markers or corrupt_records or corrupt_blobs
    return ReplicationReport(
        in_sync=not problems and diverged is None,
        missing_versions=missing_versions,
        missing_blobs=missing_blobs,
        missing_markers=missing_markers,
        diverged_at=diverged,
        lag_versions=max(0, p_head - r_head),
        lag_seconds=round(lag_seconds, 3),
        primary_head=p_head,
        replica_head=r_head,
        deep=deep,
        corrupt_records=corrupt_records,
        corrupt_blobs=corrupt_blobs,
        bytes_hashed=bytes_hashed,
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


def _compare_records(
    primary: ModelStore, replica: ModelStore, p_counters: list[int], r_counters: set[int]
) -> tuple[dict[int, VersionRecord], int | None, list[int]]:
    """Both sides' records: the primary's (verified), the first divergence and the corrupt replica records.

    A replica record that differs from the primary's is *diverged* when it is
    a valid record of its own with another ``record_hash`` (someone wrote
    other history there), and *corrupt* otherwise (it does not parse, or its
    hashes do not recompute), which repair may overwrite.
    """
    p_raw = dict(zip(p_counters, (d for _, d in primary.fetch_raw(record_key(c) for c in p_counters))))
    p_records, problem = check_chain((c, p_raw.get(c)) for c in range(len(p_counters)))
    if problem is not None:
        raise ModelStoreError(
            f"{primary.url} does not verify at {version_id(problem.counter)} "
            f"({problem.kind}: {problem.detail}); a replica cannot be judged against it "
            "(run `sn46 store verify --deep` on the primary)"
        )
    common = sorted(c for c in r_counters if c < len(p_records))
    r_raw = dict(zip(common, (d for _, d in replica.fetch_raw(record_key(c) for c in common))))
    diverged, corrupt = None, []
    for counter in common:
        theirs, ours = r_raw[counter], p_raw[counter]
        if theirs is None or theirs == ours:
            continue
        record, _ = check_record(counter, theirs)
        if record is not None and record.record_hash != p_records[counter].record_hash:
            diverged = counter
            break
        corrupt.append(counter)
    return dict(enumerate(p_records)), diverged, corrupt


def _rehash(replica: ModelStore, shas: list[str]) -> tuple[list[str], list[str], int]:
    """Re-hash replica blobs in parallel: those whose content is not their name, those gone, bytes read."""

    def one(sha: str) -> tuple[str, str | None, int]:
        try:
            with replica.objects.open(blob_key(sha)) as stream:
                actual, size = hash_stream(stream)
        except NotFoundError:
            return sha, None, 0
        return sha, actual, size

    bad, gone, total = [], [], 0
    with ThreadPoolExecutor(HASH_WORKERS) as pool:
        for sha, actual, size in pool.map(one, shas):
            total += size
            if actual is None:
                gone.append(sha)
            elif actual != sha:
                bad.append(sha)
    return bad, gone, total


def _repair(primary: ModelStore, replica: ModelStore, report: ReplicationReport) -> dict[str, int]:
    blobs = sorted({*report.missing_blobs, *report.corrupt_blobs})
    _copy_blobs(primary, replica, blobs)
    for counter in report.missing_markers:
        replica.objects.put(collected_key(counter), primary.objects.get(collected_key(counter)))
    for counter in report.corrupt_records:
        replica.objects.put(record_key(counter), primary.objects.get(record_key(counter)))
    records = 0
    for counter in report.missing_versions:
        data = primary.objects.get(record_key(counter))
        try:
            replica.objects.put_if_absent(record_key(counter), data)
            records += 1
        except PreconditionFailedError:
            if replica.objects.get(record_key(counter)) != data:
                raise ModelStoreError(
                    f"{replica.url}: {version_id(counter)} was written elsewhere meanwhile"
                ) from None
    newest = {}
    if report.missing_versions:
        head = primary.get(report.missing_versions[-1])
        replica.advance_hint(head)
        newest = {"version_id": head.version_id, "record_hash": head.record_hash}
    copied = {
        "blobs": len(blobs),
        "markers": len(report.missing_markers),
        "records": records,
        "corrupt_records_replaced": len(report.corrupt_records),
    }
    audit.append_event(replica.objects, "repair", {"primary": primary.url, **copied, **newest})
    return copied


def _copy_blobs(primary: ModelStore, replica: ModelStore, shas: Iterable[str]) -> None:
    """Copy blobs through a local file, hashing on the way: a bad primary blob is never written."""
    with tempfile.TemporaryDirectory(prefix="sn46-repair-") as tmp:
        local = Path(tmp) / "blob"
        for sha in shas:
            with primary.objects.open(blob_key(sha)) as src, open(local, "wb") as out:
                actual, _ = copy_and_hash(src, out)
            if actual != sha:
                raise IntegrityError(
                    f"{primary.url}: blob {sha} is corrupt (hashes to {actual}); not copied to {replica.url}"
                )
            replica.objects.upload(blob_key(sha), local)
