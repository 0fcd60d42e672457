"""Where a hotkey's curated set lives: ``curated/hotkey={hk}/listings.parquet`` and ``quarantine.parquet``.

Both are rewritten whole each run (a hotkey's set is small next to a run's
budget), through a temporary file so memory holds the table once, not twice.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

from sn46_pipelines.objectstore import NotFoundError, ObjectStore

from .schema import CURATED_SCHEMA, QUARANTINE_SCHEMA

CURATED_PREFIX = "curated/"


def listings_key(hotkey: str) -> str:
    return f"{CURATED_PREFIX}hotkey={hotkey}/listings.parquet"


def quarantine_key(hotkey: str) -> str:
    return f"{CURATED_PREFIX}hotkey={hotkey}/quarantine.parquet"


@dataclass(frozen=True, slots=True)
class CuratedSet:
    """A hotkey's stored curated listings and its accumulated quarantine."""

    listings: pa.Table
    quarantine: pa.Table


def read_curated(store: ObjectStore, hotkey: str) -> CuratedSet:
    """The hotkey's stored set; empty tables (declared schemas) before its first run."""
    return CuratedSet(
        _read(store, listings_key(hotkey), CURATED_SCHEMA),
        _read(store, quarantine_key(hotkey), QUARANTINE_SCHEMA),
    )


def write_curated(store: ObjectStore, hotkey: str, listings: pa.Table, quarantine: pa.Table) -> None:
    """Replace the hotkey's stored set (pass the previous quarantine concatenated with the new one)."""
    _write(store, listings_key(hotkey), listings.cast(CURATED_SCHEMA))
    _write(store, quarantine_key(hotkey), quarantine.cast(QUARANTINE_SCHEMA))


def _read(store: ObjectStore, key: str, schema: pa.Schema) -> pa.Table:
    try:
        data = store.get(key)
    except NotFoundError:
        return schema.empty_table()
    return pq.read_table(pa.BufferReader(data)).select(schema.names).cast(schema)


def _write(store: ObjectStore, key: str, table: pa.Table) -> None:
    with tempfile.TemporaryFile() as spool:
        pq.write_table(table, spool, compression="zstd")
        spool.seek(0)
        store.put(key, spool)
