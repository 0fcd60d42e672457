"""The declared shape of SN46 listings: the 18 columns miners upload, and what curation adds.

Everything downstream (aggregates, scores, the price model) relies on these
types, so they are fixed here once rather than inferred from whatever a
miner's pandas happened to write. The demo seeder writes with the same column
order so its files look like real uploads.
"""

from __future__ import annotations

import pyarrow as pa

#: Timestamps are UTC with microsecond precision everywhere in the pipeline.
TIMESTAMP = pa.timestamp("us", tz="UTC")

#: Repeated provenance strings (one hotkey, a few jobs, one key per file) cost
#: almost nothing dictionary-encoded, against ~100 bytes a row as plain strings.
_LABEL = pa.dictionary(pa.int32(), pa.string())

#: The SN46 upload columns, in the order miners write them.
LISTING_SCHEMA = pa.schema(
    [
        pa.field("uri", pa.string()),
        pa.field("datetime", TIMESTAMP),
        pa.field("label", pa.string()),
        pa.field("zpid", pa.string()),
        pa.field("price", pa.float64()),
        pa.field("address", pa.string()),
        pa.field("bedrooms", pa.int32()),
        pa.field("bathrooms", pa.float64()),
        pa.field("living_area", pa.float64()),
        pa.field("home_type", pa.string()),
        pa.field("home_status", pa.string()),
        pa.field("days_on_zillow", pa.int32()),
        pa.field("url", pa.string()),
        pa.field("zip_code", pa.string()),
        pa.field("city", pa.string()),
        pa.field("state", pa.string()),
        pa.field("latitude", pa.float64()),
        pa.field("longitude", pa.float64()),
    ]
)

#: Column names of :data:`LISTING_SCHEMA`, in upload order.
COLUMNS: tuple[str, ...] = tuple(LISTING_SCHEMA.names)

#: What epoch/zipcode documents carry beyond the upload columns, kept in the curated rows. Null for
#: rows of job files, and absent from curated files written before they existed (read as null).
EPOCH_SCHEMA = pa.schema(
    [
        pa.field("epoch_id", pa.string()),
        pa.field("lot_size", pa.float64()),
        pa.field("year_built", pa.int32()),
    ]
)

#: One loaded upload's rows, whichever layout it came in: the upload columns, then the epoch columns.
UPLOAD_SCHEMA = pa.schema(list(LISTING_SCHEMA) + list(EPOCH_SCHEMA))

#: Columns a row cannot be used without (null or blank rejects the row as ``missing_required``).
REQUIRED_VALUES: tuple[str, ...] = ("zpid", "address", "price", "home_type", "home_status", "datetime")

#: Where each curated row came from; ``uploaded_at`` (the object's mtime) later
#: decides which miner uploaded a listing first.
PROVENANCE_SCHEMA = pa.schema(
    [
        pa.field("hotkey", _LABEL, nullable=False),
        pa.field("job_id", _LABEL, nullable=False),
        pa.field("file_key", _LABEL, nullable=False),
        pa.field("row_index", pa.int32(), nullable=False),
        pa.field("uploaded_at", TIMESTAMP, nullable=False),
    ]
)

#: One hotkey's curated listings: the upload and epoch columns in declared types plus provenance.
CURATED_SCHEMA = pa.schema(list(UPLOAD_SCHEMA) + list(PROVENANCE_SCHEMA))

#: One rejected row (or whole file, with a null ``row_index``) and why.
QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("hotkey", _LABEL, nullable=False),
        pa.field("job_id", _LABEL),
        pa.field("file_key", _LABEL, nullable=False),
        pa.field("row_index", pa.int32()),
        pa.field("reason", _LABEL, nullable=False),
        pa.field("detail", pa.string(), nullable=False),
        #: When the ingest run that found it ran: rejections count against a miner for one scoring
        #: window (``ScoringRules.window``) from then. Null in files written before the column existed.
        pa.field("ingested_at", TIMESTAMP),
    ]
)
