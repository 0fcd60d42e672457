"""Upload discovery: each file found once, late files too, bounded requests, nothing lost on restarts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from bittensor.sp_core import Keypair

from sn46_pipelines.listings.discovery import ScanCursor, scan_uploads
from sn46_pipelines.listings.ingest import HotkeyManifest

HOTKEYS = sorted(Keypair.create_from_uri(f"//discovery-{i}").ss58_address for i in range(5))


def upload(store, hotkey: str, job: str, stamp: str, rows: int = 10) -> str:
    key = f"data/hotkey={hotkey}/job_id={job}/data_{stamp}_{rows}.parquet"
    store.put(key, b"parquet bytes do not matter to discovery")
    return key


class Manifests:
    """The per-hotkey manifests as the ingest asset would commit them, kept in memory."""

    def __init__(self):
        self.done: dict[str, dict[str, str]] = {}

    def __call__(self, hotkey: str) -> HotkeyManifest:
        return HotkeyManifest(hotkey, processed=dict(self.done.get(hotkey, {})))

    def mark(self, scan) -> None:
        for hotkey, files in scan.new_files.items():
            self.done.setdefault(hotkey, {}).update((f.key, f.etag) for f in files)


def keys(scan) -> set[str]:
    return {f.key for files in scan.new_files.values() for f in files}


def test_each_file_is_found_once(store):
    manifests, cursor = Manifests(), ScanCursor()
    expected = {upload(store, hk, job, "20261120_101500") for hk in HOTKEYS[:3] for job in ("zip_1", "zip_2")}
    scan = scan_uploads(store, cursor, manifests)
    assert keys(scan) == expected
    manifests.mark(scan)
    again = scan_uploads(store, scan.cursor, manifests)
    assert again.new_files == {}
    newer = upload(store, HOTKEYS[1], "zip_2", "20261121_080000")
    third = scan_uploads(store, ScanCursor.from_json(again.cursor.to_json()), manifests)
    assert keys(third) == {newer}


def test_request_count_is_hotkeys_plus_job_folders_not_objects(store):
    manifests = Manifests()
    for hk in HOTKEYS[:3]:
        for job in ("a", "b"):
            for i in range(30):
                upload(store, hk, job, f"20261120_10{i:04d}")
    first = scan_uploads(store, ScanCursor(), manifests, rescan_budget=0)
    manifests.mark(first)
    upload(store, HOTKEYS[0], "a", "20261122_000000")
    store.requests.reset()
    scan = scan_uploads(store, first.cursor, manifests, rescan_budget=0)
    assert len(keys(scan)) == 1
    # one listing of hotkeys, one per hotkey (its jobs), one per job folder
    assert scan.requests == 1 + 3 + 6


def test_late_file_sorting_before_the_cursor_is_found_by_the_rescan(store):
    manifests = Manifests()
    upload(store, HOTKEYS[0], "a", "20261120_120000")
    first = scan_uploads(store, ScanCursor(), manifests)
    manifests.mark(first)
    late = upload(store, HOTKEYS[0], "a", "20261101_000000")  # older name, uploaded later
    quiet_later = datetime.now(UTC) + timedelta(hours=1)
    scan = scan_uploads(store, first.cursor, manifests, now=quiet_later)
    assert keys(scan) == {late}
    assert scan.late_files == 1


def test_a_lost_cursor_requests_nothing_already_processed(store):
    manifests = Manifests()
    for hk in HOTKEYS[:2]:
        upload(store, hk, "a", "20261120_120000")
    manifests.mark(scan_uploads(store, ScanCursor(), manifests))
    fresh = upload(store, HOTKEYS[1], "a", "20261121_120000")
    scan = scan_uploads(store, ScanCursor.from_json("{not json"), manifests)
    assert keys(scan) == {fresh}


def test_a_deleted_cursor_key_loses_nothing(store):
    manifests = Manifests()
    first_key = upload(store, HOTKEYS[0], "a", "20261120_120000")
    first = scan_uploads(store, ScanCursor(), manifests)
    manifests.mark(first)
    store.delete(first_key)
    newer = upload(store, HOTKEYS[0], "a", "20261121_000000")
    assert keys(scan_uploads(store, first.cursor, manifests)) == {newer}


def test_first_tick_over_many_hotkeys_is_capped_and_backfilled(store):
    manifests = Manifests()
    for hk in HOTKEYS:
        upload(store, hk, "a", "20261120_120000")
    cursor, seen, ticks = ScanCursor(), set(), 0
    while True:
        scan = scan_uploads(store, cursor, manifests, max_hotkeys=2)
        ticks += 1
        assert len(scan.new_files) <= 2
        if not scan.new_files:
            break
        seen |= set(scan.new_files)
        manifests.mark(scan)
        cursor = scan.cursor
    assert seen == set(HOTKEYS) and ticks == 4  # 2 + 2 + 1, then nothing


def test_folders_that_are_not_hotkeys_are_skipped_and_reported(store):
    manifests = Manifests()
    good = upload(store, HOTKEYS[0], "a", "20261120_120000")
    store.put("data/hotkey=not-an-address/job_id=a/data_20261120_120000_10.parquet", b"x")
    store.put("data/somewhere-else/file.parquet", b"x")
    scan = scan_uploads(store, ScanCursor(), manifests)
    assert keys(scan) == {good}
    assert scan.invalid_folders == ["hotkey=not-an-address", "somewhere-else"]


def test_empty_upload_area(store):
    scan = scan_uploads(store, ScanCursor(), Manifests())
    assert scan.new_files == {} and scan.invalid_folders == [] and scan.deferred == []


@pytest.mark.parametrize("text", ["", "null", "[]", '{"v":1}', '{"folders": 3}'])
def test_unreadable_cursors_start_fresh(text):
    assert ScanCursor.from_json(text) == ScanCursor()


EPOCHS = ("2026-11-20T08-00-00", "2026-11-20T12-00-00", "2026-11-20T16-00-00", "2026-11-20T20-00-00")


def upload_epoch(store, hotkey: str, epoch: str, zipcode: str, stamp: str, *, doubled: bool = False) -> str:
    home = f"data/hotkey={hotkey}/"
    key = (home if doubled else "") + f"{home}epoch={epoch}/zipcode={zipcode}/data_{stamp}.json"
    store.put(key, b"json bytes do not matter to discovery")
    return key


def test_epoch_uploads_of_both_spellings_are_found_once_beside_job_files(store):
    manifests = Manifests()
    expected = {
        upload(store, HOTKEYS[0], "a", "20261120_101500"),
        upload_epoch(store, HOTKEYS[0], EPOCHS[0], "78701", "20261120_110000"),
        upload_epoch(store, HOTKEYS[0], EPOCHS[0], "78702", "20261120_110500", doubled=True),
        upload_epoch(store, HOTKEYS[1], EPOCHS[1], "10001", "20261120_150000", doubled=True),
    }
    first = scan_uploads(store, ScanCursor(), manifests)
    assert keys(first) == expected
    manifests.mark(first)
    assert scan_uploads(store, first.cursor, manifests).new_files == {}
    newer = {
        upload_epoch(store, HOTKEYS[0], EPOCHS[0], "78701", "20261120_113000"),
        upload_epoch(store, HOTKEYS[1], EPOCHS[2], "10001", "20261120_190000", doubled=True),
    }
    cursor = ScanCursor.from_json(first.cursor.to_json())
    assert keys(scan_uploads(store, cursor, manifests)) == newer
    assert "hotkey=" + HOTKEYS[0] + "/epoch=" + EPOCHS[0] + "/zipcode=78701" in first.cursor.folders


def test_epoch_request_count_covers_the_live_epochs_only(store):
    """Old epochs are not listed every tick: hotkeys, their folders, the newest epochs' zip folders."""
    manifests = Manifests()
    for epoch in EPOCHS:
        for zipcode in ("78701", "78702"):
            upload_epoch(store, HOTKEYS[0], epoch, zipcode, "20261120_230000")
            upload_epoch(store, HOTKEYS[1], epoch, zipcode, "20261120_230000", doubled=True)
    first = scan_uploads(store, ScanCursor(), manifests, rescan_budget=0)
    assert len(keys(first)) == 16
    manifests.mark(first)
    fresh = upload_epoch(store, HOTKEYS[0], EPOCHS[-1], "78701", "20261120_235900")
    store.requests.reset()
    scan = scan_uploads(store, first.cursor, manifests, rescan_budget=0)
    assert keys(scan) == {fresh}
    # hotkeys; per hotkey its folder (+ the doubled folder for HOTKEYS[1]); per hotkey the two
    # newest epochs' zip folders (2 listings) and their 4 leaf folders
    assert scan.requests == 1 + (1 + 2 + 4) + (2 + 2 + 4)


def test_late_file_in_an_old_epoch_is_found_by_the_rescan(store):
    manifests = Manifests()
    for epoch in EPOCHS:
        upload_epoch(store, HOTKEYS[0], epoch, "78701", "20261120_230000")
    first = scan_uploads(store, ScanCursor(), manifests)
    manifests.mark(first)
    late = upload_epoch(store, HOTKEYS[0], EPOCHS[0], "78799", "20261121_010000")
    assert scan_uploads(store, first.cursor, manifests, rescan_budget=0).new_files == {}
    quiet_later = datetime.now(UTC) + timedelta(hours=1)
    scan = scan_uploads(store, first.cursor, manifests, now=quiet_later)
    assert keys(scan) == {late} and scan.late_files == 1


def test_a_lost_cursor_lists_every_epoch_and_requests_nothing_processed(store):
    manifests = Manifests()
    for epoch in EPOCHS:
        upload_epoch(store, HOTKEYS[0], epoch, "78701", "20261120_230000", doubled=True)
    manifests.mark(scan_uploads(store, ScanCursor(), manifests))
    late = upload_epoch(store, HOTKEYS[0], EPOCHS[0], "78701", "20261121_010000", doubled=True)
    assert keys(scan_uploads(store, ScanCursor(), manifests, rescan_budget=0)) == {late}
