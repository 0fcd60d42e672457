"""Builders for targeted upload files: real SN46 rows, then one thing wrong with them."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sn46_pipelines.demo.listings import synth_listings
from sn46_pipelines.demo.places import PLACES
from sn46_pipelines.listings import upload_key
from sn46_pipelines.objectstore import ObjectInfo, ObjectStore

NOW = datetime(2026, 11, 23, 12, tzinfo=UTC)
HOTKEY = "5DV9VhyKohKFTkV9CFc5ywqLuaFPkuzKezCs6ubpVfTMVy73"
ZIP = "78701"
JOB = f"zillow_premium_zip_{ZIP}_sold"


def listings(n: int = 50, *, first_zpid: int = 10_000_000, zip_code: str = ZIP, seed: int = 0) -> pa.Table:
    """``n`` clean rows in declared types, scraped in the day before NOW, zpids first_zpid, +1, ..."""
    place = next(p for p in PLACES if p.zip_code == zip_code)
    zpids = np.arange(first_zpid, first_zpid + n)
    return synth_listings(
        np.random.default_rng(seed), place, zpids, newest=NOW - timedelta(hours=1), window=timedelta(days=1)
    )


def edit(table: pa.Table, row: int, **values) -> pa.Table:
    """``table`` with some columns of one row replaced (keeping the column types)."""
    records = table.to_pylist()
    records[row].update(values)
    return pa.Table.from_pylist(records, schema=table.schema)


def parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


class Uploads:
    """Writes files into the upload area the way miners do, and remembers what it wrote."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store
        self._second = 0

    def put(
        self,
        table: pa.Table | None = None,
        *,
        data: bytes | None = None,
        job: str = JOB,
        rows: int | None = None,
        hotkey: str = HOTKEY,
        key: str | None = None,
    ) -> ObjectInfo:
        """Upload ``table`` (or raw ``data``); the name declares ``rows`` (default: the real count)."""
        self._second += 1
        if data is None:
            data = parquet_bytes(table)
        if key is None:
            declared = rows if rows is not None else table.num_rows
            written = NOW - timedelta(minutes=30) + timedelta(seconds=self._second)
            key = upload_key(hotkey, job, written, declared)
        self.store.put(key, data)
        return self.store.head(key)
