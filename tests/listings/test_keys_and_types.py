"""Upload keys and tolerant reading: what miners' inferred types become, and what is refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest

from sn46_pipelines.listings import (
    COLUMNS,
    LISTING_SCHEMA,
    InvalidUploadKeyError,
    job_zip,
    parse_upload_key,
    upload_key,
)
from sn46_pipelines.listings.conform import SchemaMismatchError, conform
from tests.listings.listings_helpers import listings

HK = "5DV9VhyKohKFTkV9CFc5ywqLuaFPkuzKezCs6ubpVfTMVy73"


def test_parse_upload_key() -> None:
    key = f"data/hotkey={HK}/job_id=zillow_premium_zip_02134_sold/data_20261122_235959_317.parquet"
    parsed = parse_upload_key(key)
    assert (parsed.hotkey, parsed.job_id) == (HK, "zillow_premium_zip_02134_sold")
    assert (parsed.rows, parsed.suffix) == (317, None)
    assert parsed.timestamp == datetime(2026, 11, 22, 23, 59, 59, tzinfo=UTC)
    assert parsed.job_zip == "02134"
    assert upload_key(HK, parsed.job_id, parsed.timestamp, 317) == key


def test_parse_upload_key_with_suffix() -> None:
    key = f"data/hotkey={HK}/job_id=j/data_20261122_000000_5_00ff00ff00ff00ff.parquet"
    assert parse_upload_key(key).suffix == "00ff00ff00ff00ff"
    assert upload_key(HK, "j", datetime(2026, 11, 22, tzinfo=UTC), 5, "00ff00ff00ff00ff") == key


@pytest.mark.parametrize(
    "key",
    [
        f"data/hotkey={HK}/job_id=j/data_20261122_000000.parquet",  # no row count
        f"data/hotkey={HK}/job_id=j/data_20261122_000000_5.csv",
        f"data/hotkey={HK}/job_id=j/data_20261122_000000_5_XYZ.parquet",  # suffix not 16 hex
        f"data/hotkey={HK}/data_20261122_000000_5.parquet",  # no job folder
        f"data/hotkey={HK}/job_id=j/extra/data_20261122_000000_5.parquet",
        f"uploads/hotkey={HK}/job_id=j/data_20261122_000000_5.parquet",
    ],
)
def test_malformed_keys_are_refused_with_the_expected_pattern(key: str) -> None:
    with pytest.raises(InvalidUploadKeyError, match=r"data_\{YYYYmmdd_HHMMSS\}_\{rows\}"):
        parse_upload_key(key)


def test_impossible_timestamp_is_refused() -> None:
    with pytest.raises(InvalidUploadKeyError, match="not a valid date"):
        parse_upload_key(f"data/hotkey={HK}/job_id=j/data_20261341_000000_5.parquet")


@pytest.mark.parametrize(
    ("job", "zip_code"),
    [
        ("zillow_premium_zip_78701_sold", "78701"),
        ("zip_02134", "02134"),
        ("zillow_zip_787010_sold", None),
        ("zillow_recently_sold", None),
        ("zipcode_78701", None),
    ],
)
def test_job_zip(job: str, zip_code: str | None) -> None:
    assert job_zip(job) == zip_code


def test_declared_schema_has_the_18_columns_in_upload_order() -> None:
    assert COLUMNS == (
        "uri",
        "datetime",
        "label",
        "zpid",
        "price",
        "address",
        "bedrooms",
        "bathrooms",
        "living_area",
        "home_type",
        "home_status",
        "days_on_zillow",
        "url",
        "zip_code",
        "city",
        "state",
        "latitude",
        "longitude",
    )


def replaced(table: pa.Table, name: str, column: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, column)


def test_declared_types_pass_through_untouched() -> None:
    table = listings(5)
    conformed, bad = conform(table)
    assert conformed.equals(table) and bad == []


def test_a_file_in_declared_types_keeps_its_values_and_loses_its_metadata() -> None:
    """pandas and parquet leave schema and field metadata: the conformed table is exactly the
    declared schema."""
    table = listings(3)
    fields = [field.with_metadata({b"PARQUET:field_id": b"1"}) for field in table.schema]
    written = pa.Table.from_arrays(table.columns, schema=pa.schema(fields, metadata={b"pandas": b"{}"}))
    conformed, bad = conform(written)
    assert bad == [] and conformed.equals(table)
    assert conformed.schema.equals(LISTING_SCHEMA, check_metadata=True)


def test_inferred_types_are_converted_where_nothing_is_lost() -> None:
    table = listings(3)
    drifted = replaced(table, "zpid", pa.array([1, 2, 3], pa.int64()))
    drifted = replaced(drifted, "zip_code", pa.array([2134, 2134, None], pa.int64()))
    drifted = replaced(drifted, "price", pa.array([450_000, 500_000, 650_000], pa.int64()))
    drifted = replaced(drifted, "bedrooms", pa.array([3.0, None, 2.0]))
    drifted = replaced(drifted, "days_on_zillow", pa.array([1, 2, 3], pa.int64()))
    drifted = replaced(drifted, "home_type", pa.array(["CONDO", "CONDO", "LOT"]).dictionary_encode())
    drifted = replaced(drifted, "label", pa.nulls(3))
    drifted = replaced(drifted, "city", pa.array(["Boston"] * 3, pa.large_string()))
    drifted = replaced(drifted, "datetime", pa.array([1_700_000_000_123_456_789] * 3, pa.timestamp("ns")))
    extra = drifted.append_column("scraper_version", pa.array(["1.2"] * 3))
    conformed, bad = conform(extra.select(list(reversed(extra.column_names))))
    assert conformed.schema == LISTING_SCHEMA and bad == []
    assert conformed.column("zpid").to_pylist() == ["1", "2", "3"]
    assert conformed.column("zip_code").to_pylist() == ["02134", "02134", None]
    assert conformed.column("price").to_pylist() == [450_000.0, 500_000.0, 650_000.0]
    assert conformed.column("bedrooms").to_pylist() == [3, None, 2]
    assert conformed.column("home_type").to_pylist() == ["CONDO", "CONDO", "LOT"]
    assert conformed.column("label").null_count == 3
    first = datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=UTC)  # nanoseconds dropped
    assert conformed.column("datetime")[0].as_py() == first


def test_iso_text_datetimes_are_parsed_and_bad_ones_reject_only_their_row() -> None:
    table = listings(4)
    text = pa.array(
        ["2026-11-22T10:00:00Z", "2026-11-22 12:00:00+02:00", "2026-11-22T10:00:00.5", "yesterday"]
    )
    conformed, bad = conform(replaced(table, "datetime", text))
    stamps = conformed.column("datetime").to_pylist()
    assert stamps[:3] == [
        datetime(2026, 11, 22, 10, tzinfo=UTC),
        datetime(2026, 11, 22, 10, tzinfo=UTC),
        datetime(2026, 11, 22, 10, 0, 0, 500000, tzinfo=UTC),
    ]
    assert stamps[3] is None and bad == [(3, "datetime 'yesterday' is not an ISO-8601 time")]


def test_fractional_counts_reject_only_their_row() -> None:
    conformed, bad = conform(replaced(listings(3), "bedrooms", pa.array([2.0, 2.5, 1e12])))
    assert conformed.column("bedrooms").to_pylist() == [2, None, None]
    assert [row for row, _ in bad] == [1, 2] and "2.5 is not a whole number" in bad[0][1]


@pytest.mark.parametrize(
    ("name", "column", "words"),
    [
        ("price", pa.array(["450000"] * 3), "price is string"),
        ("address", pa.array([1, 2, 3]), "address is int64"),
        ("zpid", pa.array([1.0, 2.0, 3.0]), "zpid is double"),
        ("datetime", pa.array([1_700_000_000] * 3), "datetime is int64"),
        ("latitude", pa.array([True, False, True]), "latitude is bool"),
        ("city", pa.array([b"x", b"y", b"z"]), "city is binary"),
    ],
)
def test_unsafe_types_are_a_schema_mismatch(name: str, column: pa.Array, words: str) -> None:
    with pytest.raises(SchemaMismatchError, match=words):
        conform(replaced(listings(3), name, column))


def test_missing_columns_are_named() -> None:
    with pytest.raises(SchemaMismatchError, match="home_status, url"):
        conform(listings(3).drop_columns(["url", "home_status"]))
