"""Hand-built curated areas: rows with known answers, committed the way ingest commits them.

Each hotkey gets a ``listings-*.parquet`` and a ``quarantine-*.parquet`` in the
curated schemas and a ``manifest.json`` naming them, exactly what
``ingest_hotkey`` leaves behind, without going through uploads and curation.
"""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from sn46_pipelines.listings.ingest import HotkeyManifest
from sn46_pipelines.listings.layout import curated_prefix, manifest_key
from sn46_pipelines.listings.schema import CURATED_SCHEMA, LISTING_SCHEMA, QUARANTINE_SCHEMA

#: The fixed "now" of every test: ages are measured from it.
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
#: Default upload time of a file.
UPLOADED = NOW - timedelta(days=1)


def listing(zpid: str, *, price: float = 400_000.0, days_old: float = 2.0, **values: Any) -> dict[str, Any]:
    """One valid listing with every column filled; ``values`` override columns (None empties one)."""
    row = {
        "uri": f"https://www.zillow.com/homedetails/{zpid}_zpid/",
        "datetime": NOW - timedelta(days=days_old),
        "label": "for_sale",
        "zpid": zpid,
        "price": price,
        "address": f"{zpid} Main St",
        "bedrooms": 3,
        "bathrooms": 2.0,
        "living_area": 2000.0,
        "home_type": "SINGLE_FAMILY",
        "home_status": "FOR_SALE",
        "days_on_zillow": 5,
        "url": f"https://www.zillow.com/homedetails/{zpid}_zpid/",
        "zip_code": "78701",
        "city": "Austin",
        "state": "TX",
        "latitude": 30.27,
        "longitude": -97.74,
    }
    unknown = set(values) - set(row)
    assert not unknown, f"not listing columns: {unknown}"
    row.update(values)
    return row


def upload(
    hotkey: str, job_id: str = "job_a", name: str = "f1", uploaded_at: datetime = UPLOADED
) -> dict[str, Any]:
    """Provenance of one uploaded file (pass it to :func:`rows_of`)."""
    return {
        "hotkey": hotkey,
        "job_id": job_id,
        "file_key": f"data/hotkey={hotkey}/job_id={job_id}/{name}.parquet",
        "uploaded_at": uploaded_at,
    }


def rows_of(file: dict[str, Any], *listings: dict[str, Any]) -> list[dict[str, Any]]:
    """Curated rows: ``listings`` as rows 0, 1, ... of ``file``."""
    return [{**row, **file, "row_index": i} for i, row in enumerate(listings)]


def rejection(
    file: dict[str, Any], reason: str, row_index: int | None = 0, detail: str = "bad"
) -> dict[str, Any]:
    """One quarantine row (``row_index=None``: the whole file)."""
    return {
        "hotkey": file["hotkey"],
        "job_id": file["job_id"],
        "file_key": file["file_key"],
        "row_index": row_index,
        "reason": reason,
        "detail": detail,
    }


def commit(
    store, hotkey: str, curated: list[dict[str, Any]], quarantine: list[dict[str, Any]] = ()
) -> HotkeyManifest:
    """Write one hotkey's curated set and commit it with a manifest, like ingest does."""
    stamp = uuid.uuid4().hex[:8]
    listings_key = curated_prefix(hotkey) + f"listings-{stamp}.parquet"
    quarantine_key = curated_prefix(hotkey) + f"quarantine-{stamp}.parquet"
    _put(store, listings_key, pa.Table.from_pylist(list(curated), schema=CURATED_SCHEMA))
    _put(store, quarantine_key, pa.Table.from_pylist(list(quarantine), schema=QUARANTINE_SCHEMA))
    manifest = HotkeyManifest(
        hotkey=hotkey,
        processed={},
        listings_key=listings_key,
        quarantine_key=quarantine_key,
        updated_at=NOW.isoformat(),
    )
    store.put(manifest_key(hotkey), manifest.to_bytes())
    return manifest


def _put(store, key: str, table: pa.Table) -> None:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    store.put(key, buffer.getvalue())


assert LISTING_SCHEMA.names == list(listing("1"))  # the fixture row has exactly the upload columns
