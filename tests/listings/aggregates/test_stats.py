"""Per-miner, per-job and per-zip numbers on a curated area small enough to work out by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest

from sn46_pipelines.listings.aggregates import aggregate_store
from sn46_pipelines.listings.sources import CuratedDataError
from tests.listings.aggregates.aggregates_fixtures import NOW, commit, listing, rejection, rows_of, upload


@pytest.fixture
def aggregates(folder_store):
    """alice: job_a 4 accepted + 1 duplicate + 1 implausible; job_b 2 accepted + 2 zip mismatches,
    and 1 bad file.

    bob: every row rejected. carol: a manifest with nothing in it.
    """
    a, b, bad = upload("alice", "job_a"), upload("alice", "job_b"), upload("alice", "job_b", name="broken")
    commit(
        folder_store,
        "alice",
        rows_of(
            a,
            listing("1", days_old=1),
            listing("2", days_old=2),
            listing("2b", days_old=3, city=None),
            listing("3", days_old=10, city=None, state=None),
        )
        + rows_of(
            b,
            listing("4", price=300_000.0, living_area=1000.0, zip_code="10001", days_old=5),
            listing("5", price=500_000.0, living_area=None, zip_code="10001", days_old=6),
        ),
        [
            rejection(a, "duplicate", 4),
            rejection(a, "implausible_value", 5),
            rejection(b, "zip_mismatch", 2),
            rejection(b, "zip_mismatch", 3),
            rejection(bad, "unreadable_file", None),
        ],
    )
    bob = upload("bob")
    commit(folder_store, "bob", [], [rejection(bob, "stale", 0), rejection(bob, "stale", 1)])
    commit(folder_store, "carol", [], [])
    return aggregate_store(folder_store, now=NOW)


def by_key(table, *keys):
    return {tuple(r[k] for k in keys) if len(keys) > 1 else r[keys[0]]: r for r in table.to_pylist()}


def test_per_job_numbers(aggregates):
    jobs = by_key(aggregates["miner_job_stats"], "hotkey", "job_id")
    assert set(jobs) == {("alice", "job_a"), ("alice", "job_b"), ("bob", "job_a")}
    a = jobs["alice", "job_a"]
    assert (a["rows_accepted"], a["rows_rejected"], a["rows_submitted"], a["unique_zpids"]) == (4, 2, 6, 4)
    assert a["duplicate_rate"] == pytest.approx(1 / 6)
    assert a["plausibility_rate"] == pytest.approx(5 / 6)
    assert a["zip_match_rate"] == 1.0
    assert a["completeness"] == pytest.approx((1 + 1 + 17 / 18 + 16 / 18) / 4)
    assert a["newest_listing"] == NOW - timedelta(days=1)
    assert a["newest_age_days"] == pytest.approx(1.0)
    assert a["median_age_days"] == pytest.approx(2.5)  # ages 1, 2, 3, 10
    b = jobs["alice", "job_b"]
    assert (b["rows_accepted"], b["rows_rejected"], b["files_rejected"]) == (2, 2, 1)
    assert b["zip_match_rate"] == pytest.approx(0.5)
    assert b["rejected_unreadable_file"] == 0  # a whole file is not a row


def test_per_miner_numbers_cover_every_committed_hotkey(aggregates):
    miners = by_key(aggregates["miner_scores"], "hotkey")
    assert list(miners) == ["alice", "bob", "carol"]
    alice = miners["alice"]
    assert (alice["rows_accepted"], alice["rows_rejected"], alice["files_rejected"]) == (6, 4, 1)
    assert alice["curated_rows"] == 6
    assert alice["duplicate_rate"] == pytest.approx(0.1)
    assert alice["median_age_days"] == pytest.approx(4.0)  # ages 1, 2, 3, 5, 6, 10
    bob = miners["bob"]
    assert (bob["rows_accepted"], bob["rows_rejected"], bob["rejected_stale"], bob["score"]) == (0, 2, 2, 0.0)
    assert bob["completeness"] is None and bob["newest_listing"] is None
    carol = miners["carol"]
    assert (carol["rows_accepted"], carol["rows_submitted"]) == (0, 0)
    assert (carol["score"], carol["passed"]) == (0.0, False)
    assert carol["copy_rate"] is None  # nothing submitted: no rate


def test_zipcode_prices(aggregates):
    zips = by_key(aggregates["zipcode_stats"], "zip_code")
    assert set(zips) == {"78701", "10001"}
    assert zips["78701"]["listings"] == 4 and zips["78701"]["median_price"] == 400_000.0
    assert zips["78701"]["median_price_per_sqft"] == 200.0
    assert zips["10001"]["median_price"] == 400_000.0  # (300k + 500k) / 2
    assert zips["10001"]["median_price_per_sqft"] == 300.0  # only the row with a living area


def test_uncommitted_leftovers_and_folders_without_a_manifest_are_ignored(folder_store):
    commit(folder_store, "alice", rows_of(upload("alice"), listing("1")))
    folder_store.put("curated/hotkey=alice/listings-leftover.parquet", b"not even parquet")
    folder_store.put("curated/hotkey=ghost/listings-crashed.parquet", b"never committed")
    aggregates = aggregate_store(folder_store, now=NOW)
    assert aggregates.hotkeys == ["alice"]
    assert aggregates["miner_scores"]["rows_accepted"].to_pylist() == [1]


def test_a_missing_committed_file_is_a_clear_error(folder_store):
    manifest = commit(folder_store, "alice", rows_of(upload("alice"), listing("1")))
    folder_store.delete(manifest.listings_key)
    with pytest.raises(CuratedDataError, match="missing"):
        aggregate_store(folder_store, now=NOW)


def test_a_committed_file_without_the_curated_schema_is_a_clear_error(folder_store):
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    manifest = commit(folder_store, "alice", rows_of(upload("alice"), listing("1")))
    table = pq.read_table(io.BytesIO(folder_store.get(manifest.listings_key))).drop_columns(["price"])
    buffer = io.BytesIO()
    pq.write_table(table.set_column(0, "uri", pa.array([1], pa.int64())), buffer)
    folder_store.put(manifest.listings_key, buffer.getvalue())
    with pytest.raises(CuratedDataError) as error:
        aggregate_store(folder_store, now=NOW)
    assert manifest.listings_key in str(error.value)
    assert "uri is int64, expected string" in str(error.value) and "price missing" in str(error.value)


def test_now_must_be_timezone_aware(folder_store):
    commit(folder_store, "alice", rows_of(upload("alice"), listing("1")))
    with pytest.raises(ValueError, match="timezone-aware"):
        aggregate_store(folder_store, now=NOW.replace(tzinfo=None))


def test_unique_zpids_count_a_zpid_held_twice_once(folder_store):
    """Curation keeps one row per zpid; if a hotkey still holds one twice, unique_zpids says so."""
    a, b = upload("alice", "job_a"), upload("alice", "job_b")
    commit(
        folder_store,
        "alice",
        rows_of(a, listing("1"), listing("1"), listing("2"), listing("1", price=1.0))
        + rows_of(b, listing("1"), listing("3")),
    )
    aggregates = aggregate_store(folder_store, now=NOW)
    jobs = by_key(aggregates["miner_job_stats"], "hotkey", "job_id")
    assert (jobs["alice", "job_a"]["rows_accepted"], jobs["alice", "job_a"]["unique_zpids"]) == (4, 2)
    assert (jobs["alice", "job_b"]["rows_accepted"], jobs["alice", "job_b"]["unique_zpids"]) == (2, 2)
    [alice] = aggregates["miner_scores"].to_pylist()
    assert (alice["rows_accepted"], alice["unique_zpids"]) == (6, 3)
    assert aggregates["cross_miner_duplicates"].num_rows == 0  # repeats within one hotkey are not copies
