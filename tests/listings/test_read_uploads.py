"""What a hotkey's manifest remembers of the uploads it read stays one day deep, however long it uploads.

A miner's folder keeps every upload it ever sent (the pipeline never deletes
one), but the manifest names only the uploads of the last ``SETTLE_MARGIN``:
``settled_before`` stands for every older one. These tests backdate uploads
on the folder store (``os.utime``, the store dates files by their modification
time as S3 does by ``LastModified``), or move ingest's clock forward instead,
which works on S3 too.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from sn46_pipelines.listings import ingest
from sn46_pipelines.listings.discovery import ScanCursor, scan_uploads
from sn46_pipelines.listings.ingest import SETTLE_MARGIN, ManifestError, ingest_hotkey, read_manifest
from sn46_pipelines.listings.layout import manifest_key
from sn46_pipelines.objectstore import ObjectStore, open_store
from tests.listings.listings_helpers import HOTKEY, NOW, Uploads, listings, parquet_bytes


class Clock(datetime):
    """Ingest's wall clock, moved by the test: ``datetime.now`` as ``ingest`` sees it."""

    current: datetime

    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        return cls.current

    @classmethod
    def set(cls, monkeypatch: pytest.MonkeyPatch, moment: datetime) -> type[Clock]:
        cls.current = moment
        monkeypatch.setattr(ingest, "datetime", cls)
        return cls


def backdate(store: ObjectStore, key: str, age: timedelta) -> None:
    """Make the folder store's upload ``key`` look ``age`` old (its modification time)."""
    stamp = (datetime.now(UTC) - age).timestamp()
    os.utime(store.root / key, (stamp, stamp))


def unread_by_the_sensor(store: ObjectStore) -> set[str]:
    """What a sensor that lost its cursor finds, folder by folder and by the whole-hotkey rescan."""
    scan = scan_uploads(store, ScanCursor(), lambda hotkey: read_manifest(store, hotkey), now=NOW)
    return {f.key for files in scan.new_files.values() for f in files}


def test_the_manifest_names_only_the_last_day_of_uploads_and_still_reads_nothing_twice(folder_uploads):
    store = folder_uploads.store
    hours = [96, 72, 50, 23, 2]  # how old each upload is
    keys = [folder_uploads.put(listings(20, first_zpid=10_000_000 + 100 * i)).key for i in range(len(hours))]
    for key, age in zip(keys, hours):
        backdate(store, key, timedelta(hours=age))

    report = ingest_hotkey(store, HOTKEY, now=NOW)
    assert sorted(f.key for f in report.new_files) == sorted(keys)  # every upload is read once
    assert report.listings_rows == 100
    manifest = read_manifest(store, HOTKEY)
    assert set(manifest.processed) == {keys[3], keys[4]}  # the uploads of the last day
    assert manifest.settled_before is not None
    assert abs(manifest.settled_before - (datetime.now(UTC) - SETTLE_MARGIN)) < timedelta(minutes=5)

    assert ingest_hotkey(store, HOTKEY, now=NOW).new_files == []  # the older ones are not read again
    assert unread_by_the_sensor(store) == set()  # and no sensor asks for them


def test_an_old_upload_sent_again_under_its_key_is_read_again(folder_uploads):
    store = folder_uploads.store
    old = folder_uploads.put(listings(20)).key
    backdate(store, old, timedelta(days=3))
    ingest_hotkey(store, HOTKEY, now=NOW)
    assert old not in read_manifest(store, HOTKEY).processed

    store.put(old, parquet_bytes(listings(20, first_zpid=20_000_000)))  # the name declares 20 rows
    assert unread_by_the_sensor(store) == {old}
    again = ingest_hotkey(store, HOTKEY, now=NOW)
    assert [f.key for f in again.new_files] == [old]
    zpids = set(again.result.listings.column("zpid").to_pylist())
    assert zpids == {str(z) for z in range(20_000_000, 20_000_020)}  # the new content replaced the old rows
    assert old in read_manifest(store, HOTKEY).processed


def test_a_week_of_two_hourly_rounds_leaves_a_manifest_one_day_deep(folder_uploads, monkeypatch):
    """Time passes for the uploads (their modification times) and for ingest (its clock) alike."""
    store = folder_uploads.store
    clock = Clock.set(monkeypatch, datetime.now(UTC))
    start, sizes = clock.current, []
    for index in range(7 * 12):
        moment = start + timedelta(hours=2 * index)
        key = folder_uploads.put(listings(5, first_zpid=10_000_000 + 10 * index)).key
        os.utime(store.root / key, (moment.timestamp(), moment.timestamp()))
        clock.current = moment + timedelta(minutes=10)
        report = ingest_hotkey(store, HOTKEY, now=NOW)
        assert [f.key for f in report.new_files] == [key], index
        sizes.append(len(read_manifest(store, HOTKEY).processed))
    assert max(sizes) == 12  # a day of two-hourly uploads, from the first day on
    assert sizes[-1] == 12
    assert report.listings_rows == 5 * 7 * 12


def test_a_manifest_written_before_settling_was_recorded_is_read_as_it_was(folder_uploads):
    store = folder_uploads.store
    first = folder_uploads.put(listings(20)).key
    backdate(store, first, timedelta(days=3))
    ingest_hotkey(store, HOTKEY, now=NOW)
    body = json.loads(store.get(manifest_key(HOTKEY)))
    del body["settled_before"]  # the form an earlier version wrote: every upload read is named
    body["processed"] = {f.key: f.etag for f in store.list(f"data/hotkey={HOTKEY}/")}
    store.put(manifest_key(HOTKEY), json.dumps(body).encode())

    assert ingest_hotkey(store, HOTKEY, now=NOW).new_files == []
    second = folder_uploads.put(listings(10, first_zpid=30_000_000)).key
    report = ingest_hotkey(store, HOTKEY, now=NOW)
    assert [f.key for f in report.new_files] == [second]
    manifest = read_manifest(store, HOTKEY)
    assert manifest.settled_before is not None
    assert set(manifest.processed) == {second}


def test_uploads_settle_by_the_store_s_own_dates(every_store_url, monkeypatch):
    """On S3 an upload's date is its ``LastModified``, set by the server (moto and SeaweedFS here):
    a run two days later settles it."""
    store = open_store(every_store_url)
    uploads = Uploads(store)
    first = {uploads.put(listings(10, first_zpid=10_000_000 + 100 * i)).key for i in range(2)}
    assert {f.key for f in ingest_hotkey(store, HOTKEY, now=NOW).new_files} == first
    assert set(read_manifest(store, HOTKEY).processed) == first  # uploaded within the day

    second = {uploads.put(listings(10, first_zpid=20_000_000 + 100 * i)).key for i in range(2)}
    Clock.set(monkeypatch, datetime.now(UTC) + timedelta(days=2))
    report = ingest_hotkey(store, HOTKEY, now=NOW)
    assert {f.key for f in report.new_files} == second
    assert report.listings_rows == 40
    assert read_manifest(store, HOTKEY).processed == {}  # all four are older than the settle point
    assert ingest_hotkey(store, HOTKEY, now=NOW).new_files == []
    assert unread_by_the_sensor(store) == set()


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"{not json", "JSONDecodeError"),
        (b'{"hotkey": "x"}', "no 'processed' field"),
        (b'{"processed": {}, "settled_before": "yesterday"}', "Invalid isoformat"),
        (b'{"processed": {}, "settled_before": "2026-12-01T00:00:00"}', "has no timezone"),
    ],
)
def test_an_unreadable_manifest_is_named_and_nothing_changes(folder_uploads, body, says):
    store = folder_uploads.store
    folder_uploads.put(listings(20))
    ingest_hotkey(store, HOTKEY, now=NOW)
    store.put(manifest_key(HOTKEY), body)
    folder_uploads.put(listings(10, first_zpid=30_000_000))
    before = {(o.key, o.etag) for o in store.list("")}
    with pytest.raises(ManifestError, match=rf"{manifest_key(HOTKEY)}: not a readable manifest .*{says}"):
        ingest_hotkey(store, HOTKEY, now=NOW)
    assert {(o.key, o.etag) for o in store.list("")} == before
