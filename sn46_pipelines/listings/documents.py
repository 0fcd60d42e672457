"""Epoch/zipcode uploads: one JSON document per miner, epoch and zip code, read into listing rows.

The resi miner writes ``{epoch_id, zipcode, miner_hotkey, submission_timestamp,
listing_count, listings: [...]}``, each listing in the miner's own field names
(``sqft``, ``property_type``, ``scraped_timestamp``...). Mapped onto
:data:`UPLOAD_SCHEMA` here, its rows meet exactly the row rules, duplicate
handling, copy detection and scores a job file's rows meet. What the document
says about itself is checked first, and a document that contradicts its folder
or itself is quarantined whole: the folder, not the body, says whose it is.
"""

from __future__ import annotations

import json
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .conform import BadValue, conform_values
from .keys import UploadKey
from .rules import Reason
from .schema import UPLOAD_SCHEMA

#: Fields every document has (the SN46 validator reads the same ones, plus ``listing_count``).
DOCUMENT_FIELDS: tuple[str, ...] = ("epoch_id", "zipcode", "miner_hotkey", "listing_count", "listings")

#: Upload column -> the listing field it is read from (columns not named here are derived below).
LISTING_FIELDS: dict[str, str] = {
    "uri": "source_url",
    "datetime": "scraped_timestamp",
    "zpid": "zpid",
    "price": "price",
    "address": "address",
    "bedrooms": "bedrooms",
    "bathrooms": "bathrooms",
    "living_area": "sqft",
    "home_type": "property_type",
    "home_status": "listing_status",
    "days_on_zillow": "days_on_market",
    "url": "source_url",
    "zip_code": "zipcode",
    "latitude": "latitude",
    "longitude": "longitude",
    "lot_size": "lot_size",
    "year_built": "year_built",
}

#: ``..., Austin, TX 78701`` at the end of an address: the only place a listing names its city and state.
_CITY_STATE = r",\s*(?P<city>[^,]+?)\s*,\s*(?P<state>[A-Z]{2})\s+\d{5}(?:-\d{4})?\s*$"


class DocumentRejectedError(ValueError):
    """The document as a whole is unusable; ``reason`` is the quarantine code."""

    def __init__(self, reason: Reason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def read_document(data: bytes, key: UploadKey) -> tuple[pa.Table, list[BadValue]]:
    """The listings of one document as :data:`UPLOAD_SCHEMA` rows, and values that could not be typed.

    :class:`DocumentRejectedError` when the bytes are not the document shape
    (``malformed_json``), the document is another hotkey's
    (``hotkey_mismatch``) or its ``listing_count`` is wrong
    (``listing_count_mismatch``).
    """
    document = _document(data)
    if document["miner_hotkey"] != key.hotkey:
        raise DocumentRejectedError(
            Reason.HOTKEY_MISMATCH,
            f"miner_hotkey {document['miner_hotkey']!r} but the file is in the folder of {key.hotkey}",
        )
    listings = document["listings"]
    if document["listing_count"] != len(listings):
        raise DocumentRejectedError(
            Reason.LISTING_COUNT_MISMATCH,
            f"listing_count says {document['listing_count']}, the document holds {len(listings)}",
        )
    columns: dict[str, pa.ChunkedArray] = {}
    bad: list[BadValue] = []
    for column, source in LISTING_FIELDS.items():
        columns[column], column_bad = conform_values(column, [listing.get(source) for listing in listings])
        bad.extend(column_bad)
    n = len(listings)
    place = pc.extract_regex(pc.fill_null(columns["address"], ""), _CITY_STATE)
    for name in ("city", "state"):
        field = pc.struct_field(place, name)
        columns[name] = pc.if_else(place.is_valid(), field, pa.scalar(None, pa.string()))
    zipcode = key.job_zip
    columns["label"] = pa.chunked_array([pa.array([f"zip:{zipcode}"] * n, pa.string())])
    columns["epoch_id"] = pa.chunked_array([pa.array([key.epoch_id] * n, pa.string())])
    table = pa.Table.from_arrays([_chunked(columns[f.name]) for f in UPLOAD_SCHEMA], schema=UPLOAD_SCHEMA)
    return table, sorted(bad)


def _document(data: bytes) -> dict[str, Any]:
    """The parsed document, after the shape checks (``malformed_json`` says what is wrong)."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise DocumentRejectedError(Reason.MALFORMED_JSON, f"not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise DocumentRejectedError(Reason.MALFORMED_JSON, f"a JSON {type(document).__name__}, not an object")
    missing = [name for name in DOCUMENT_FIELDS if name not in document]
    if missing:
        raise DocumentRejectedError(Reason.MALFORMED_JSON, f"no {', '.join(missing)} field")
    count, listings = document["listing_count"], document["listings"]
    if not isinstance(count, int) or isinstance(count, bool):
        raise DocumentRejectedError(Reason.MALFORMED_JSON, f"listing_count is {count!r}, not a whole number")
    if not isinstance(listings, list) or not all(isinstance(item, dict) for item in listings):
        raise DocumentRejectedError(Reason.MALFORMED_JSON, "listings is not a list of objects")
    if not isinstance(document["miner_hotkey"], str):
        raise DocumentRejectedError(Reason.MALFORMED_JSON, "miner_hotkey is not a string")
    return document


def _chunked(column: pa.Array | pa.ChunkedArray) -> pa.ChunkedArray:
    return column if isinstance(column, pa.ChunkedArray) else pa.chunked_array([column])
