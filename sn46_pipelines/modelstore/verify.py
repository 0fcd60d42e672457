"""Chain verification: find the first version that is not what the chain says it is.

Shallow checks cost one LIST page per 1,000 objects plus one GET per record
(fetched in parallel): records parse, counters are contiguous from 0, every
``record_hash`` and ``content_hash`` recomputes, every ``parent`` is the
previous ``record_hash``, the ``HEAD`` hint agrees, and every live version's
blobs exist with the right size. Deep checks also re-hash every live blob.

A chain cut short (its newest records deleted, the hint moved back) is still
a valid chain, so the head is also checked against a witness kept apart from
the records and the hint: the audit trail's newest version event (see
:func:`.audit.newest_version`). It is written by every commit, import and
repair, in the store itself (so it exists wherever the chain does, unlike a
replica, which may lag or be absent), and never rewritten. A store whose
records and audit trail were both rolled back together is beyond it; the
replica check (its newer records) is the witness for that.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from ..objectstore import NotFoundError, ObjectInfo
from . import audit, segments
from .errors import InvalidRecordError
from .hashing import hash_stream
from .layout import BLOBS, blob_key, record_key, sha_of_blob_key, version_id
from .record import VersionRecord, content_hash, parse_record, parse_version
from .store import ModelStore


class Corruption(StrEnum):
    """The kinds of damage verification tells apart; the value is what reports and metadata carry."""

    MISSING_RECORD = "missing_record"
    """A counter below the newest has no record."""
    BAD_RECORD_HASH = "bad_record_hash"
    """A record's bytes do not hash to its ``record_hash`` (edited, or unreadable)."""
    BROKEN_LINK = "broken_link"
    """A record's ``parent`` (or the ``HEAD`` hint) names another record than the one before it."""
    NON_SEQUENTIAL_COUNTER = "non_sequential_counter"
    """A record stored under one counter says it is another."""
    MISSING_BLOB = "missing_blob"
    """A live version's blob is gone."""
    BLOB_HASH_MISMATCH = "blob_hash_mismatch"
    """A live version's blob does not hash to its name (deep verification)."""
    ROLLED_BACK = "rolled_back"
    """The audit trail names a version the chain no longer has: newest versions were cut off."""


@dataclass(frozen=True, slots=True)
class Problem:
    counter: int
    kind: Corruption
    detail: str


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """The outcome of a verification; ``first_bad`` is ``None`` when the chain is valid."""

    valid: bool
    versions: int
    first_bad: str | None
    counter: int | None
    kind: str | None
    """The :class:`Corruption` found, as its plain string (reports go to JSON and Dagster metadata)."""
    detail: str | None
    live: int
    collected: int
    blobs_checked: int
    bytes_hashed: int
    deep: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verify(store: ModelStore, *, deep: bool = False) -> VerifyReport:
    """Check the whole chain; raises :class:`StoreUnavailableError` (never "valid") if it cannot be read."""
    store.objects.check()
    infos = store.record_infos()
    counters = list(infos)
    collected = store.collected_counters()
    records, problem = _check_records(store, infos, use_segments=not deep)
    limit = problem.counter if problem else len(records)
    live = [r for r in records[:limit] if r.counter not in collected]
    blob_problem, blobs_checked, bytes_hashed = _check_blobs(store, live, deep=deep)
    if blob_problem and (problem is None or blob_problem.counter < problem.counter):
        problem = blob_problem
    n_collected = len(collected & infos.keys())
    return VerifyReport(
        valid=problem is None,
        versions=len(counters),
        first_bad=version_id(problem.counter) if problem else None,
        counter=problem.counter if problem else None,
        kind=problem.kind.value if problem else None,
        detail=problem.detail if problem else None,
        live=len(counters) - n_collected,
        collected=n_collected,
        blobs_checked=blobs_checked,
        bytes_hashed=bytes_hashed,
        deep=deep,
    )


def _check_records(
    store: ModelStore, infos: dict[int, ObjectInfo], *, use_segments: bool
) -> tuple[list[VersionRecord], Problem | None]:
    """Check the stored records (from sealed segments where still valid), then the ``HEAD`` hint."""
    expected = range(max(infos) + 1) if infos else range(0)
    sealed = segments.load_sealed(store, infos) if use_segments else {}
    records, problem, raw = _check_raw(store, expected, infos, sealed)
    if problem is not None and (problem.counter in sealed or problem.counter - 1 in sealed):
        # Maybe only the segment is damaged: judge the record objects themselves.
        sealed = {}
        records, problem, raw = _check_raw(store, expected, infos, sealed)
    if use_segments:
        segments.seal(
            store,
            {r.counter: data for r in records if (data := raw[r.counter]) is not None},
            infos,
            skip={c - c % segments.SEGMENT_SIZE for c in sealed},
        )
    hint = store.head_hint()
    if problem is None and hint is not None:
        if hint["counter"] > len(records) - 1:
            return records, Problem(
                len(records),
                Corruption.MISSING_RECORD,
                f"HEAD names {version_id(hint['counter'])} but the chain ends before it",
            )
        if hint.get("record_hash") != records[hint["counter"]].record_hash:
            return records, Problem(
                hint["counter"], Corruption.BROKEN_LINK, "HEAD names a different record_hash for this version"
            )
    if problem is None:
        problem = _check_witness(store, records)
    return records, problem


def _check_witness(store: ModelStore, records: list[VersionRecord]) -> Problem | None:
    """``rolled_back`` if the audit trail saw a version this chain no longer holds as it was."""
    event = audit.newest_version(store.objects)
    if event is None:
        return None
    try:
        counter = parse_version(event.what["version_id"])
    except InvalidRecordError:
        return None  # not a version name: nothing it can vouch for
    seen = f"the audit trail's {event.kind} of {event.when} by {event.who} names {version_id(counter)}"
    if counter >= len(records):
        newest = version_id(len(records) - 1) if records else "nothing"
        return Problem(
            len(records),
            Corruption.ROLLED_BACK,
            f"{seen}, but the chain ends at {newest}: its newest versions were removed",
        )
    if records[counter].record_hash != event.what["record_hash"]:
        return Problem(
            counter,
            Corruption.ROLLED_BACK,
            f"{seen} as record {event.what['record_hash'][:12]}, but the "
            f"store holds {records[counter].record_hash[:12]}: history from there was replaced",
        )
    return None


def _check_raw(
    store: ModelStore, expected: range, infos: dict[int, ObjectInfo], sealed: dict[int, bytes]
) -> tuple[list[VersionRecord], Problem | None, dict[int, bytes | None]]:
    to_fetch = [c for c in expected if c in infos and c not in sealed]
    raw: dict[int, bytes | None] = dict(sealed)
    raw.update(zip(to_fetch, (data for _, data in store.fetch_raw(record_key(c) for c in to_fetch))))
    records, problem = check_chain((c, raw.get(c)) for c in expected)
    return records, problem, raw


def check_chain(items: Iterable[tuple[int, bytes | None]]) -> tuple[list[VersionRecord], Problem | None]:
    """Parse and link-check record bytes given in counter order from 0 (``None`` = missing).

    Returns the good prefix of the chain and the first problem, if any.
    """
    records: list[VersionRecord] = []
    parent: VersionRecord | None = None
    for counter, data in items:
        record, problem = check_record(counter, data)
        if record is None:
            return records, problem
        expected_parent = parent.record_hash if parent else None
        if record.parent != expected_parent:
            return records, Problem(
                counter,
                Corruption.BROKEN_LINK,
                f"parent is {record.parent}, previous record_hash is {expected_parent}",
            )
        records.append(record)
        parent = record
    return records, None


def check_record(counter: int, data: bytes | None) -> tuple[VersionRecord | None, Problem | None]:
    """One stored record on its own: it exists, parses, sits under its counter and its hashes recompute.

    Returns the record, or ``None`` and the problem. Its link to the parent is
    the chain's business (:func:`check_chain`).
    """
    key = record_key(counter)
    if data is None:
        return None, Problem(counter, Corruption.MISSING_RECORD, f"{key} is missing")
    try:
        record = parse_record(data, where=key)
    except InvalidRecordError as exc:
        return None, Problem(counter, Corruption.BAD_RECORD_HASH, f"record does not parse: {exc}")
    if record.counter != counter:
        detail = f"{key} holds counter {record.counter}, expected {counter}"
        return None, Problem(counter, Corruption.NON_SEQUENTIAL_COUNTER, detail)
    if record.content_hash != content_hash(record.manifest):
        return None, Problem(counter, Corruption.BAD_RECORD_HASH, "content_hash does not match the manifest")
    if record.record_hash != record.computed_record_hash():
        return None, Problem(counter, Corruption.BAD_RECORD_HASH, "record_hash does not match the record")
    return record, None


def _check_blobs(
    store: ModelStore, live: list[VersionRecord], *, deep: bool
) -> tuple[Problem | None, int, int]:
    """Existence and size of every live blob (from one listing); with ``deep``, re-hash each once.

    Returns the first problem (in version order), blobs checked and bytes hashed.
    """
    sizes = {sha: info.size for info in store.objects.list(BLOBS) if (sha := sha_of_blob_key(info.key))}
    checked: set[str] = set()
    bytes_hashed = 0
    for record in live:
        for path, entry in record.manifest.items():
            if entry.sha256 in checked:
                continue
            checked.add(entry.sha256)
            where = f"blob of {path} ({entry.sha256[:12]})"
            problem = None
            if entry.sha256 not in sizes:
                problem = Problem(record.counter, Corruption.MISSING_BLOB, f"{where} is missing")
            elif sizes[entry.sha256] != entry.size:
                problem = Problem(
                    record.counter,
                    Corruption.BLOB_HASH_MISMATCH,
                    f"{where} has {sizes[entry.sha256]} bytes, the manifest says {entry.size}",
                )
            elif deep:
                try:
                    with store.objects.open(blob_key(entry.sha256)) as stream:
                        sha, size = hash_stream(stream)
                except NotFoundError:
                    sha, size = None, 0
                bytes_hashed += size
                if sha is None:
                    problem = Problem(
                        record.counter, Corruption.MISSING_BLOB, f"{where} vanished while verifying"
                    )
                elif sha != entry.sha256:
                    problem = Problem(
                        record.counter, Corruption.BLOB_HASH_MISMATCH, f"{where} hashes to {sha}"
                    )
            if problem:
                return problem, len(checked), bytes_hashed
    return None, len(checked), bytes_hashed
