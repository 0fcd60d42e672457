"""A miner uploading both layouts: job parquet files and epoch/zipcode JSON documents feed one score,
one copy detection and one training set."""

from __future__ import annotations

import json
from datetime import timedelta

import pyarrow as pa
import pytest

from sn46_pipelines.listings.aggregates import aggregate_store, write_aggregates
from sn46_pipelines.listings.ingest import ingest_hotkey
from sn46_pipelines.listings.keys import epoch_job_id, epoch_upload_key
from sn46_pipelines.listings.views import training_listings
from tests.listings.listings_helpers import HOTKEY, JOB, NOW, ZIP, Uploads, listings

COPIER = "5FHneW46xGXgs5mUiveU4sbTyGBzmstUspZC92UhjJM694ty"
EPOCH = "2026-11-23T08-00-00"


def document(hotkey: str, rows: pa.Table) -> bytes:
    """``rows`` (upload columns) as the resi miner's epoch/zipcode document, in its own field names."""
    listings = [
        {
            "zpid": row["zpid"],
            "mls_id": None,
            "address": row["address"],
            "price": row["price"],
            "property_type": row["home_type"],
            "listing_status": row["home_status"],
            "listing_date": row["datetime"].isoformat(),
            "source_url": row["url"],
            "scraped_timestamp": row["datetime"].isoformat(),
            "zipcode": row["zip_code"],
            "bedrooms": row["bedrooms"],
            "bathrooms": row["bathrooms"],
            "sqft": row["living_area"],
            "days_on_market": row["days_on_zillow"],
            "lot_size": 6_000.0,
            "year_built": 1994,
            "zestimate": None,
            "latitude": row["latitude"],
            "longitude": row["longitude"],
            "data_source": "zillow",
        }
        for row in rows.to_pylist()
    ]
    body = {
        "epoch_id": EPOCH,
        "zipcode": ZIP,
        "miner_hotkey": hotkey,
        "submission_timestamp": NOW.isoformat(),
        "listing_count": len(listings),
        "listings": listings,
    }
    return json.dumps(body, indent=2).encode()


def put_document(uploads: Uploads, hotkey: str, rows: pa.Table, minutes: int) -> str:
    key = epoch_upload_key(hotkey, EPOCH, ZIP, NOW - timedelta(minutes=minutes), doubled=True)
    return uploads.put(data=document(hotkey, rows), key=key).key


@pytest.fixture
def both_layouts(store, uploads):
    """HOTKEY uploads a job file and an epoch document; COPIER then sends some of the job file's rows
    (same zpid, price and scrape time) in a document of its own, beside rows of its own."""
    job_rows = listings(150, first_zpid=10_000_000)
    job_key = uploads.put(job_rows).key
    epoch_key = put_document(uploads, HOTKEY, listings(120, first_zpid=20_000_000, seed=1), minutes=20)
    stolen = job_rows.slice(0, 30)
    own = listings(120, first_zpid=30_000_000, seed=2)
    copier_key = put_document(uploads, COPIER, pa.concat_tables([stolen, own]), minutes=10)
    for hotkey in (HOTKEY, COPIER):
        report = ingest_hotkey(store, hotkey, now=NOW)
        assert report.result.quarantine.num_rows == 0, report.result.quarantine.to_pylist()[:3]
    aggregates = aggregate_store(store, now=NOW)
    write_aggregates(store, aggregates)
    return aggregates, job_key, epoch_key, copier_key


def test_rows_of_both_layouts_count_in_one_score(both_layouts):
    aggregates, *_ = both_layouts
    scores = {row["hotkey"]: row for row in aggregates["miner_scores"].to_pylist()}
    assert (scores[HOTKEY]["rows_accepted"], scores[HOTKEY]["rows_submitted"]) == (270, 270)
    assert scores[HOTKEY]["passed"] and scores[HOTKEY]["copy_rate"] == 0
    jobs = {
        row["job_id"]: row["rows_accepted"]
        for row in aggregates["miner_job_stats"].to_pylist()
        if row["hotkey"] == HOTKEY
    }
    assert jobs == {JOB: 150, epoch_job_id(EPOCH, ZIP): 120}


def test_a_document_copying_another_miners_job_file_is_flagged(both_layouts):
    aggregates, job_key, _, copier_key = both_layouts
    copies = aggregates["cross_miner_duplicates"].to_pylist()
    assert len(copies) == 30
    assert {(c["hotkey"], c["file_key"], c["original_hotkey"], c["original_file_key"]) for c in copies} == {
        (COPIER, copier_key, HOTKEY, job_key)
    }
    assert sorted(c["row_index"] for c in copies) == list(range(30))
    scores = {row["hotkey"]: row for row in aggregates["miner_scores"].to_pylist()}
    assert scores[COPIER]["copy_rate"] == pytest.approx(30 / 150)
    assert not scores[COPIER]["passed"] and "copies" in scores[COPIER]["reasons"]


def test_training_reads_the_rows_of_both_layouts(both_layouts, store):
    _, job_key, epoch_key, _ = both_layouts
    rows = training_listings(store)
    assert set(rows.column("hotkey").to_pylist()) == {HOTKEY}  # the copier failed
    by_file = {}
    for row in rows.select(["file_key", "epoch_id", "lot_size", "year_built"]).to_pylist():
        by_file.setdefault(row["file_key"], set()).add((row["epoch_id"], row["lot_size"], row["year_built"]))
    assert by_file == {job_key: {(None, None, None)}, epoch_key: {(EPOCH, 6_000.0, 1994)}}
    assert rows.num_rows == 270
