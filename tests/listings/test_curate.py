"""curate_hotkey: every file check and row rule with a targeted file, on both store backends."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pyarrow as pa
import pytest

import sn46_pipelines.listings.files as file_checks
from sn46_pipelines.listings import CURATED_SCHEMA, QUARANTINE_SCHEMA, REASONS, curate_hotkey
from sn46_pipelines.listings.rules import Rules  # its own module: pyproject marks it immutable (B008)
from sn46_pipelines.objectstore import NotFoundError
from tests.listings.listings_helpers import HOTKEY, JOB, NOW, edit, listings, parquet_bytes


def curate(store, files, existing=None, rules=Rules()):
    return curate_hotkey(store, HOTKEY, files, existing, rules, NOW)


def rejected(result) -> list[tuple[int | None, str]]:
    """(row_index, reason) of every quarantine entry, sorted."""
    q = result.quarantine
    return sorted(
        zip(q.column("row_index").to_pylist(), q.column("reason").cast(pa.string()).to_pylist()),
        key=lambda e: (e[0] is not None, e[0] or 0, e[1]),
    )


def test_clean_file_is_curated_whole_with_provenance(store, uploads) -> None:
    info = uploads.put(listings(40))
    result = curate(store, [info])
    assert result.listings.schema == CURATED_SCHEMA and result.quarantine.schema == QUARANTINE_SCHEMA
    assert result.listings.num_rows == 40 and result.quarantine.num_rows == 0
    assert set(result.listings.column("file_key").to_pylist()) == {info.key}
    assert set(result.listings.column("hotkey").to_pylist()) == {HOTKEY}
    assert set(result.listings.column("job_id").to_pylist()) == {JOB}
    assert sorted(result.listings.column("row_index").to_pylist()) == list(range(40))
    assert set(result.listings.column("uploaded_at").to_pylist()) == {info.mtime}
    [report] = result.files
    assert (report.key, report.status, report.rows_in, report.rows_accepted) == (info.key, "accepted", 40, 40)


def test_upload_area_is_never_modified(store, uploads) -> None:
    uploads.put(listings(30))
    uploads.put(data=b"not parquet at all" * 100, rows=10)
    before = [(o.key, o.etag, o.size) for o in store.list("")]
    curate(store, list(store.list("data/")))
    assert [(o.key, o.etag, o.size) for o in store.list("")] == before


# -- file checks ---------------------------------------------------------------------------------
def whole_file(result) -> tuple[str, str]:
    [report] = result.files
    assert report.status == "rejected" and report.rows_accepted == 0 and result.listings.num_rows == 0
    [(row, reason)] = rejected(result)
    assert row is None
    return reason, report.detail


def test_truncated_parquet_is_unreadable(store, uploads) -> None:
    data = parquet_bytes(listings(60))
    reason, detail = whole_file(curate(store, [uploads.put(data=data[: len(data) // 2], rows=60)]))
    assert reason == "unreadable_file" and "parquet" in detail


def test_empty_file_fails_the_size_check_and_is_unreadable_without_one(store, uploads) -> None:
    info = uploads.put(data=b"", rows=0)
    assert whole_file(curate(store, [info]))[0] == "file_size"
    assert whole_file(curate(store, [info], rules=Rules(min_file_size=0)))[0] == "unreadable_file"


def test_file_size_bounds_come_from_the_rules(store, uploads) -> None:
    info = uploads.put(listings(20))
    reason, detail = whole_file(curate(store, [info], rules=Rules(max_file_size=info.size - 1)))
    assert reason == "file_size" and str(info.size) in detail


def test_wrong_schema(store, uploads) -> None:
    table = listings(20)
    renamed = table.rename_columns(["zipcode" if c == "zip_code" else c for c in table.column_names])
    reason, detail = whole_file(curate(store, [uploads.put(renamed)]))
    assert reason == "schema_mismatch" and "zip_code" in detail


def test_unsafe_type_is_a_schema_mismatch(store, uploads) -> None:
    table = listings(20)
    as_text = table.set_column(4, "price", table.column("price").cast(pa.string()))
    reason, detail = whole_file(curate(store, [uploads.put(as_text)]))
    assert reason == "schema_mismatch" and "price" in detail


def test_name_must_state_the_footer_row_count(store, uploads) -> None:
    reason, detail = whole_file(curate(store, [uploads.put(listings(20), rows=21)]))
    assert reason == "filename_row_mismatch" and "21" in detail and "20" in detail


def test_name_must_follow_the_upload_pattern(store, uploads) -> None:
    key = f"data/hotkey={HOTKEY}/job_id={JOB}/listings.parquet"
    reason, _ = whole_file(curate(store, [uploads.put(listings(20), key=key)]))
    assert reason == "filename_row_mismatch"


def test_hex_suffix_is_allowed(store, uploads) -> None:
    key = f"data/hotkey={HOTKEY}/job_id={JOB}/data_20261123_110000_20_0123456789abcdef.parquet"
    assert curate(store, [uploads.put(listings(20), key=key)]).listings.num_rows == 20


def test_zero_row_file_is_accepted_and_adds_nothing(store, uploads) -> None:
    result = curate(store, [uploads.put(listings(0))])
    [report] = result.files
    assert report.status == "accepted" and report.rows_in == 0 and result.listings.num_rows == 0
    assert result.quarantine.num_rows == 0


def test_a_bad_file_does_not_spoil_the_good_ones(store, uploads) -> None:
    good = uploads.put(listings(25))
    bad = uploads.put(data=b"\x00" * 4096, rows=10)
    result = curate(store, [good, bad])
    assert result.listings.num_rows == 25
    assert [(f.key, f.status) for f in result.files] == [(good.key, "accepted"), (bad.key, "rejected")]


def test_large_files_are_parsed_from_a_local_copy(store, uploads, monkeypatch) -> None:
    monkeypatch.setattr(file_checks, "IN_MEMORY_LIMIT", 0)
    good = uploads.put(listings(20))
    data = parquet_bytes(listings(20))
    truncated = uploads.put(data=data[: len(data) // 2], rows=20)
    result = curate(store, [good, truncated])
    assert result.listings.num_rows == 20
    assert [f.reason for f in result.files] == [None, "unreadable_file"]


def test_a_store_failure_raises_instead_of_quarantining(store, uploads) -> None:
    info = uploads.put(listings(20))
    store.delete(info.key)  # listed, then gone: not the miner's fault, and not a verdict on the file
    with pytest.raises(NotFoundError):
        curate(store, [info])


# -- row rules (the folder backend is enough: reading is covered on both above) ---------------------
@pytest.mark.parametrize(
    ("values", "reason", "words"),
    [
        ({"zpid": None}, "missing_required", "zpid"),
        ({"zpid": ""}, "missing_required", "zpid"),
        ({"address": "   "}, "missing_required", "address"),
        ({"price": None}, "missing_required", "price"),
        ({"home_type": None}, "missing_required", "home_type"),
        ({"home_status": ""}, "missing_required", "home_status"),
        ({"datetime": None}, "missing_required", "datetime"),
        ({"price": 9_999.0}, "implausible_value", "price 9999 outside 10000..50000000"),
        ({"price": 50_000_001.0}, "implausible_value", "price"),
        ({"bedrooms": 21}, "implausible_value", "bedrooms"),
        ({"bathrooms": -0.5}, "implausible_value", "bathrooms"),
        ({"living_area": 99.0}, "implausible_value", "living_area"),
        ({"living_area": 100_001.0}, "implausible_value", "living_area"),
        ({"latitude": 0.0, "longitude": 0.0}, "implausible_value", "not in the US"),
        ({"latitude": -97.7, "longitude": 30.3}, "implausible_value", "not in the US"),
        ({"zip_code": "10001"}, "zip_mismatch", "78701"),
        ({"zip_code": "7870"}, "zip_mismatch", "5-digit"),
        ({"zip_code": "78７01"}, "zip_mismatch", "5-digit"),  # noqa: RUF001  a full-width digit is the input
        ({"zip_code": None}, "zip_mismatch", "78701"),
        ({"datetime": NOW + timedelta(hours=1)}, "future_date", "after now"),
        ({"datetime": NOW - timedelta(days=30, seconds=1)}, "stale", "30 days freshness window"),
    ],
)
def test_each_row_rule_rejects_only_its_row(folder_store, folder_uploads, values, reason, words) -> None:
    result = curate(folder_store, [folder_uploads.put(edit(listings(30), 7, **values))])
    assert rejected(result) == [(7, reason)]
    assert words in result.quarantine.column("detail")[0].as_py()
    assert result.listings.num_rows == 29 and 7 not in result.listings.column("row_index").to_pylist()
    [report] = result.files
    assert (report.rows_in, report.rows_accepted) == (30, 29)


@pytest.mark.parametrize(
    "values",
    [
        {"bedrooms": 0, "bathrooms": 0.0},
        {"bedrooms": 20, "bathrooms": 20.0, "living_area": 100_000.0},
        {"price": 10_000.0},
        {"price": 50_000_000.0},
        {"bedrooms": None, "bathrooms": None, "living_area": None, "latitude": None, "days_on_zillow": None},
        {"latitude": 21.31, "longitude": -157.86},  # Honolulu
        {"latitude": 61.2, "longitude": -149.9},  # Anchorage
        {"datetime": NOW + timedelta(minutes=4)},  # within the clock skew
        {"datetime": NOW - timedelta(days=29, hours=23)},
    ],
)
def test_edge_values_are_accepted(folder_store, folder_uploads, values) -> None:
    assert rejected(curate(folder_store, [folder_uploads.put(edit(listings(10), 3, **values))])) == []


def test_first_failing_rule_names_the_reason(folder_store, folder_uploads) -> None:
    table = edit(listings(10), 2, address=None, price=1.0, zip_code="10001")
    assert rejected(curate(folder_store, [folder_uploads.put(table)])) == [(2, "missing_required")]


def test_freshness_window_is_configurable(folder_store, folder_uploads) -> None:
    table = edit(listings(10), 4, datetime=NOW - timedelta(hours=40))
    result = curate(folder_store, [folder_uploads.put(table)], rules=Rules(freshness=timedelta(hours=36)))
    assert rejected(result) == [(4, "stale")]
    assert "older than the 36 hours freshness window" in result.quarantine.column("detail")[0].as_py()


def test_a_job_without_a_zip_accepts_any_zip(folder_store, folder_uploads) -> None:
    table = edit(listings(10), 1, zip_code="10001")
    assert rejected(curate(folder_store, [folder_uploads.put(table, job="zillow_recently_sold_texas")])) == []


# -- duplicates ----------------------------------------------------------------------------------
def test_newest_row_per_zpid_wins_within_and_across_files(store, uploads) -> None:
    first = listings(20)
    stamps = first.column("datetime").to_pylist()
    in_file = pa.concat_tables([first, first.slice(3, 1)])  # row 20 repeats row 3 exactly
    relisted = edit(
        listings(5, first_zpid=20_000_000),
        0,
        zpid=first.column("zpid")[5].as_py(),
        datetime=stamps[5] + timedelta(minutes=1),
        price=123_000.0,
    )
    older = edit(
        listings(5, first_zpid=30_000_000),
        0,
        zpid=first.column("zpid")[6].as_py(),
        datetime=stamps[6] - timedelta(hours=2),
    )
    a, b, c = uploads.put(in_file), uploads.put(relisted), uploads.put(older)
    result = curate(store, [a, b, c])
    q = result.quarantine.to_pylist()
    assert sorted((e["file_key"], e["row_index"]) for e in q) == sorted([(a.key, 3), (a.key, 5), (c.key, 0)])
    assert {e["reason"] for e in q} == {"duplicate"}
    zpids = result.listings.column("zpid").to_pylist()
    assert len(zpids) == len(set(zpids)) == 20 + 4 + 4
    winner = result.listings.filter(pa.compute.equal(result.listings.column("zpid"), first.column("zpid")[5]))
    assert winner.column("price").to_pylist() == [123_000.0] and winner.column("file_key")[0].as_py() == b.key
    assert result.stats()["duplicate_rate"] == pytest.approx(3 / 31)


def test_existing_rows_merge_and_lose_only_to_newer_ones(store, uploads) -> None:
    first = curate(store, [uploads.put(listings(10))]).listings
    stamps = first.column("datetime").to_pylist()
    newer = edit(
        listings(3, first_zpid=40_000_000),
        0,
        zpid=first.column("zpid")[2].as_py(),
        datetime=stamps[2] + timedelta(minutes=5),
    )
    older_at = stamps[4] - timedelta(minutes=5)
    stale_copy = edit(newer, 1, zpid=first.column("zpid")[4].as_py(), datetime=older_at)
    result = curate(store, [uploads.put(stale_copy)], existing=first)
    assert result.listings.num_rows == 10 + 1
    q = result.quarantine.to_pylist()
    assert sorted((e["file_key"] == first.column("file_key")[0].as_py(), e["row_index"]) for e in q) == [
        (False, 1),
        (True, 2),
    ]


def test_zpid_type_drift_across_files_is_tolerated_and_deduplicated(store, uploads) -> None:
    as_string = listings(10)
    as_int = listings(10, first_zpid=10_000_005, seed=1)
    as_int = as_int.set_column(3, "zpid", as_int.column("zpid").cast(pa.int64()))
    result = curate(store, [uploads.put(as_string), uploads.put(as_int)])
    assert result.listings.schema.field("zpid").type == pa.string()
    expected = [str(z) for z in range(10_000_000, 10_000_015)]
    assert sorted(result.listings.column("zpid").to_pylist()) == expected
    assert result.reason_counts()["duplicate"] == 5


# -- content survives -----------------------------------------------------------------------------
def test_unicode_in_every_string_column_survives(store, uploads) -> None:
    table = listings(5)
    text = {
        "uri": "https://www.zillow.com/homedetails/Ñandú-café/10000000_zpid/",
        "label": "zip:78701 🏠",
        "address": "12 Calle Peñasco, Austin, TX 78701 — unit «3»",
        "home_type": "SINGLE_FAMILY_ÉTÉ",
        "home_status": "RECENTLY_SOLD ✓",
        "url": "https://www.zillow.com/homedetails/東京-tower/10000000_zpid/",
        "city": "Austin 奥斯汀",
        "state": "TX\u200b",
        "zpid": "10000000\u00e9",
    }
    result = curate(store, [uploads.put(edit(table, 0, **text))])
    assert result.quarantine.num_rows == 0
    row = result.listings.filter(pa.compute.equal(result.listings.column("row_index"), 0)).to_pylist()[0]
    assert {k: row[k] for k in text} == text


def test_reports_and_stats(store, uploads) -> None:
    good = uploads.put(edit(listings(10), 0, price=5.0))
    bad = uploads.put(listings(10), rows=11)
    result = curate(store, [good, bad])
    stats = result.stats()
    assert stats["files_processed"] == 2 and stats["files_rejected"] == 1
    assert stats["rows_in"] == 10 and stats["rows_accepted"] == 9 and stats["listings"] == 9
    assert stats["rows_rejected"] == {
        r: (1 if r in ("implausible_value", "filename_row_mismatch") else 0) for r in REASONS
    }
    assert stats["newest_upload"] == max(good.mtime, bad.mtime).isoformat()
    assert list(result.reason_counts()) == list(REASONS)


# -- caller errors ---------------------------------------------------------------------------------
def test_files_of_another_hotkey_are_refused(store, uploads) -> None:
    info = uploads.put(listings(5), hotkey="5OtherMiner")
    with pytest.raises(ValueError, match="not uploads of"):
        curate(store, [info])


def test_an_upload_replaced_under_the_same_key_replaces_its_rows(store, uploads) -> None:
    info = uploads.put(listings(5))
    first = curate(store, [info])
    store.put(info.key, parquet_bytes(edit(listings(5), 0, price=777_000.0)))
    again = curate(store, [store.head(info.key)], existing=first.listings)
    assert again.quarantine.num_rows == 0 and again.listings.num_rows == 5
    assert 777_000.0 in again.listings.column("price").to_pylist()


def test_now_must_be_timezone_aware(store, uploads) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        curate_hotkey(store, HOTKEY, [uploads.put(listings(5))], now=NOW.replace(tzinfo=None))


def test_nothing_new_keeps_the_existing_set(store, uploads) -> None:
    first = curate(store, [uploads.put(listings(5))]).listings
    again = curate(store, [], existing=first)
    assert again.listings.equals(first) and again.quarantine.num_rows == 0 and again.files == []
    assert np.isclose(again.stats()["duplicate_rate"], 0.0)
