"""Epoch/zipcode JSON uploads: both key spellings ingest, whole-document reasons, per-listing zip check."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from sn46_pipelines.listings.ingest import ingest_hotkey, read_manifest
from sn46_pipelines.listings.keys import epoch_upload_key, parse_upload_key
from tests.gateway.clients import zipcode_document  # the document the real resi client writes
from tests.listings.listings_helpers import HOTKEY

EPOCH = "2026-12-03T08-00-00"
ZIP = "78701"


def put_document(store, body: bytes, *, doubled: bool = False, zipcode: str = ZIP, seconds: int = 0) -> str:
    written = datetime.now(UTC) + timedelta(seconds=seconds)
    key = epoch_upload_key(HOTKEY, EPOCH, zipcode, written, doubled=doubled)
    store.put(key, body)
    return key


def document(listings: int = 10, **changes) -> dict:
    body = json.loads(zipcode_document(HOTKEY, EPOCH, ZIP, listings))
    body.update(changes)
    return body


def encode(body: dict) -> bytes:
    return json.dumps(body, indent=2).encode()


@pytest.mark.parametrize("doubled", [False, True], ids=["key", "doubled-key"])
def test_both_key_spellings_ingest_into_the_curated_set(store, doubled):
    key = put_document(store, zipcode_document(HOTKEY, EPOCH, ZIP, 10), doubled=doubled)
    parsed = parse_upload_key(key)
    job = f"epoch_{EPOCH}_zip_{ZIP}"
    assert (parsed.job_id, parsed.job_zip, parsed.epoch_id, parsed.rows) == (job, ZIP, EPOCH, None)
    report = ingest_hotkey(store, HOTKEY, now=datetime.now(UTC) + timedelta(minutes=1))
    rows = report.result.listings.sort_by("row_index").to_pylist()
    assert len(rows) == 10 and report.result.quarantine.num_rows == 0
    first = rows[0]
    assert first["label"] == f"zip:{ZIP}" and first["zip_code"] == ZIP and first["epoch_id"] == EPOCH
    assert (first["city"], first["state"]) == ("Austin", "TX")
    assert first["living_area"] == 1400.0 and first["home_type"] == "SINGLE_FAMILY"
    assert first["uri"] == first["url"] == "https://www.zillow.com/homedetails/40000000_zpid/"
    assert read_manifest(store, HOTKEY).runs[-1].rows_in == {f"epoch_{EPOCH}_zip_{ZIP}": 10}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "malformed_json"),
        (
            encode({"epoch_id": EPOCH, "zipcode": ZIP, "miner_hotkey": HOTKEY, "listings": []}),
            "malformed_json",
        ),
        (encode(document(10) | {"listings": "many"}), "malformed_json"),
        (encode(document(10, listing_count=11)), "listing_count_mismatch"),
        (encode(document(10, miner_hotkey="5Someone" + HOTKEY[8:])), "hotkey_mismatch"),
    ],
    ids=["not-json", "no-listing-count", "listings-not-a-list", "count", "hotkey"],
)
def test_a_document_contradicting_itself_or_its_folder_is_quarantined_whole(folder_store, body, reason):
    key = put_document(folder_store, body + b" " * 1024)
    report = ingest_hotkey(folder_store, HOTKEY)
    assert report.result.listings.num_rows == 0
    [entry] = report.result.quarantine.to_pylist()
    assert (entry["file_key"], entry["reason"], entry["row_index"]) == (key, reason, None)


def test_each_listing_must_be_in_the_folders_zip_and_meets_the_row_rules(folder_store):
    body = document(10)
    body["listings"][2]["zipcode"] = "10001"
    body["listings"][4]["price"] = 5.0
    body["listings"][6]["zpid"] = None
    body["listings"][8]["bedrooms"] = "three"
    put_document(folder_store, encode(body))
    report = ingest_hotkey(folder_store, HOTKEY, now=datetime.now(UTC) + timedelta(minutes=1))
    found = {(e["row_index"], e["reason"]) for e in report.result.quarantine.to_pylist()}
    assert found == {
        (2, "zip_mismatch"),
        (4, "implausible_value"),
        (6, "missing_required"),
        (8, "implausible_value"),
    }
    assert report.result.listings.num_rows == 6
