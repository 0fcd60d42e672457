"""miner_epoch_stats: the SN46 validator's per-epoch rates, from real epoch documents through ingest."""

from __future__ import annotations

import io
import json
import re
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow.parquet as pq
import pytest

from sn46_pipelines.demo.listings import synth_listings
from sn46_pipelines.demo.places import PLACES
from sn46_pipelines.listings.aggregates import aggregate_store, write_aggregates
from sn46_pipelines.listings.ingest import ingest_hotkey
from sn46_pipelines.listings.keys import epoch_job_id, epoch_upload_key, upload_key
from sn46_pipelines.listings.views import EPOCH_JOB_PATTERN, connect_views, write_views_file
from tests.gateway.clients import zipcode_document  # the document the real resi client writes

HOTKEY = "5DV9VhyKohKFTkV9CFc5ywqLuaFPkuzKezCs6ubpVfTMVy73"
FIRST, SECOND = "2026-12-03T08-00-00", "2026-12-03T12-00-00"


def document(epoch: str, zipcode: str, n: int, first_zpid: int, **edits: dict) -> dict:
    """A resi miner's document of ``n`` listings with zpids from ``first_zpid``; ``edits`` by
    listing index."""
    body = json.loads(zipcode_document(HOTKEY, epoch, zipcode, n))
    for i, listing in enumerate(body["listings"]):
        zpid = str(first_zpid + i)
        listing.update(zpid=zpid, source_url=f"https://www.zillow.com/homedetails/{zpid}_zpid/")
        listing.update(edits.get(f"l{i}", {}))
    return body


def put(store, epoch: str, zipcode: str, body: bytes, second: int) -> None:
    written = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=10) + timedelta(seconds=second)
    store.put(epoch_upload_key(HOTKEY, epoch, zipcode, written), body + b" " * 1024)


@pytest.fixture
def published(folder_store):
    """One miner's two epochs (one with a broken document) and a job file, ingested and aggregated."""
    put(
        folder_store,
        FIRST,
        "78701",
        json.dumps(
            document(
                FIRST,
                "78701",
                10,
                50_000_000,
                l1={"zipcode": "78702"},  # another of the epoch's zips: rejected, but in the epoch
                l2={"zipcode": "10001"},  # outside the epoch
                l3={"price": None},  # incomplete
                l4={"scraped_timestamp": None},  # the row rules need a time; the validator does not
                l5={"price": 5},  # implausible
                l6={"bedrooms": "three"},  # not a number: implausible
            )
        ).encode(),
        1,
    )
    put(folder_store, FIRST, "78702", json.dumps(document(FIRST, "78702", 10, 51_000_000)).encode(), 2)
    put(folder_store, SECOND, "78701", b"{not json", 3)
    put(folder_store, SECOND, "78703", json.dumps(document(SECOND, "78703", 5, 52_000_000)).encode(), 4)
    place = next(p for p in PLACES if p.zip_code == "78701")
    job_rows = synth_listings(
        np.random.default_rng(0),
        place,
        np.arange(60_000_000, 60_000_040),
        newest=datetime.now(UTC) - timedelta(hours=1),
        window=timedelta(days=1),
    )
    sink = io.BytesIO()
    pq.write_table(job_rows, sink)
    folder_store.put(upload_key(HOTKEY, "zillow_zip_78701", datetime.now(UTC), 40), sink.getvalue())

    now = datetime.now(UTC) + timedelta(minutes=1)
    report = ingest_hotkey(folder_store, HOTKEY, now=now)
    assert report.result.stats()["rows_in"] == 65
    write_aggregates(folder_store, aggregate_store(folder_store, now=now))
    return folder_store


def stats_of(con) -> dict[str, dict]:
    relation = con.sql("SELECT * FROM miner_epoch_stats")
    return {row[1]: dict(zip(relation.columns, row)) for row in relation.fetchall()}


def test_the_validators_rates_per_miner_and_epoch(published):
    con = connect_views(published)
    stats = stats_of(con)
    assert set(stats) == {FIRST, SECOND}  # the job file has no epoch: left to miner_job_stats
    first = stats[FIRST]
    assert (first["hotkey"], first["zipcodes"]) == (HOTKEY, ["78701", "78702"])
    assert (first["rows_submitted"], first["rows_accepted"], first["rows_rejected"]) == (20, 14, 6)
    assert first["complete_rate"] == pytest.approx(19 / 20)  # only the null price misses a field it needs
    assert first["plausible_rate"] == pytest.approx(17 / 20)  # and two more are implausible
    # the four rows rejected before their zip was looked at are not counted either way
    assert first["zip_checked_rows"] == 16
    assert first["in_epoch_zip_rate"] == pytest.approx(15 / 16)

    second = stats[SECOND]
    assert second["zipcodes"] == ["78701", "78703"]  # the broken document's folder is one of them
    assert (second["rows_submitted"], second["files_rejected"]) == (5, 1)
    rates = ("complete_rate", "plausible_rate", "in_epoch_zip_rate")
    assert [second[name] for name in rates] == [1.0, 1.0, 1.0]


def test_the_views_file_holds_the_same_rows(published, tmp_path):
    import duckdb

    rows = write_views_file(published, tmp_path / "sn46.duckdb")
    assert rows["miner_epoch_stats"] == 2
    expected = stats_of(connect_views(published))
    with duckdb.connect(str(tmp_path / "sn46.duckdb"), read_only=True) as con:
        assert stats_of(con) == expected


def test_the_pattern_reads_the_job_an_epoch_document_answers():
    job = epoch_job_id(FIRST, "78701")
    pattern = re.compile(EPOCH_JOB_PATTERN)
    assert pattern.fullmatch(job).groups() == (FIRST, "78701")
    assert pattern.fullmatch("zillow_premium_zip_78701_sold") is None
