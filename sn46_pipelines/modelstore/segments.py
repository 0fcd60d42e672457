"""Sealed segments: one object per 1,000 records, so verifying a long chain is cheap.

Verification reads every record once, one GET each; on S3 that is the whole
cost of a shallow verify. Once records ``k*1000 .. k*1000+999`` exist,
their exact bytes are sealed into ``segments/v{k*1000}.json`` together with
each record object's (size, etag) fingerprint. A later verify uses a segment
only while every record object still has the fingerprint it had when sealed
(records are created once and never rewritten, and any rewrite changes an
etag on both backends); otherwise it reads those records one by one. The
commit that completes a segment seals it, and verify seals any it finds
missing, so a store's segments stay current at the cost of one ~1,000-GET
commit in every 1,000. A segment is a cache: a missing, stale or damaged one
costs speed, never a wrong answer, and ``--deep`` ignores segments altogether.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import TYPE_CHECKING

from ..objectstore import ObjectInfo, ObjectStoreError, PreconditionFailedError, StoreUnavailableError
from .errors import ModelStoreError
from .layout import RECORDS, SEGMENTS, counter_of_record_key, record_key, segment_key
from .record import canonical_json

if TYPE_CHECKING:
    from .store import ModelStore

SEGMENT_SIZE = 1000


def full_segments(max_counter: int) -> range:
    """Start counters of the segments that are complete up to ``max_counter``."""
    return range(0, max_counter + 1 - SEGMENT_SIZE + 1, SEGMENT_SIZE)


def load_sealed(store: ModelStore, infos: dict[int, ObjectInfo]) -> dict[int, bytes]:
    """Record bytes from every sealed segment whose fingerprints still match the listed record objects."""
    sealed_starts = set()
    for info in store.objects.list(SEGMENTS):
        name = info.key[len(SEGMENTS) :]
        if name.startswith("v") and name.endswith(".json") and name[1:-5].isdigit():
            sealed_starts.add(int(name[1:-5]))
    starts = [s for s in full_segments(max(infos, default=-1)) if s in sealed_starts]
    found: dict[int, bytes] = {}
    for start, (_, data) in zip(starts, store.fetch_raw(segment_key(s) for s in starts)):
        found.update(_usable(data, start, infos))
    return found


def _usable(data: bytes | None, first: int, infos: dict[int, ObjectInfo]) -> dict[int, bytes]:
    if data is None:
        return {}
    try:
        raw = json.loads(data)
        records, prints = raw["records"], raw["fingerprints"]
        if raw["first"] != first or len(records) != SEGMENT_SIZE or len(prints) != SEGMENT_SIZE:
            return {}
        out = {}
        for i, (record, (size, etag)) in enumerate(zip(records, prints, strict=True)):
            info = infos.get(first + i)
            if info is None or (info.size, info.etag) != (size, etag):
                return {}
            out[first + i] = record.encode()
        return out
    except (ValueError, KeyError, TypeError, AttributeError):
        return {}


def seal(
    store: ModelStore, verified: dict[int, bytes], infos: dict[int, ObjectInfo], skip: Iterable[int]
) -> int:
    """Write a segment for each complete run of ``verified`` records not already usable; return how many.

    Best effort: a read-only identity (an inference node) or a racing sealer is not an error.
    """
    done = set(skip)
    written = 0
    for start in full_segments(max(verified, default=-1)):
        counters = range(start, start + SEGMENT_SIZE)
        if start in done or any(c not in verified or c not in infos for c in counters):
            continue
        body = canonical_json(
            {
                "format": 1,
                "first": start,
                "records": [verified[c].decode() for c in counters],
                "fingerprints": [[infos[c].size, infos[c].etag] for c in counters],
            }
        )
        try:
            store.objects.put(segment_key(start), body)
            written += 1
        except (PreconditionFailedError, StoreUnavailableError):
            return written
    return written


def seal_segment(store: ModelStore, first: int) -> bool:
    """Seal records ``first .. first+SEGMENT_SIZE-1`` right after the commit that completed them.

    Best effort: the commit has already succeeded, so a failure here only
    means a later verify reads these records one by one (and seals them).
    """
    try:
        infos: dict[int, ObjectInfo] = {}
        for info in store.objects.list(RECORDS, start_after=record_key(first - 1) if first else None):
            counter = counter_of_record_key(info.key)
            if counter is None or counter >= first + SEGMENT_SIZE:
                break
            infos[counter] = info
        counters = range(first, first + SEGMENT_SIZE)
        raw = dict(zip(counters, (d for _, d in store.fetch_raw(record_key(c) for c in counters))))
        if any(data is None for data in raw.values()):
            return False
        return seal(store, raw, infos, skip=()) == 1  # type: ignore[arg-type]
    except (ObjectStoreError, ModelStoreError):
        return False
