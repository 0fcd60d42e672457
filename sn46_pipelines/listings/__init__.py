"""Validate and curate SN46 miner listings (no Dagster here: usable from any script).

>>> previous = read_curated(store, hotkey)
>>> result = curate_hotkey(store, hotkey, new_files, previous.listings, Rules(), now)
>>> write_curated(store, hotkey, result.listings, pa.concat_tables([previous.quarantine, result.quarantine]))
>>> result.stats()["rows_rejected"]["stale"]
"""

from .curate import CurationResult, FileReport, curate_hotkey
from .curated import CuratedSet, listings_key, quarantine_key, read_curated, write_curated
from .keys import InvalidUploadKeyError, UploadKey, hotkey_prefix, job_zip, parse_upload_key, upload_key
from .rules import REASONS, Reason, Rules
from .schema import (
    COLUMNS,
    CURATED_SCHEMA,
    LISTING_SCHEMA,
    PROVENANCE_SCHEMA,
    QUARANTINE_SCHEMA,
    REQUIRED_VALUES,
)

__all__ = [
    "COLUMNS",
    "CURATED_SCHEMA",
    "LISTING_SCHEMA",
    "PROVENANCE_SCHEMA",
    "QUARANTINE_SCHEMA",
    "REASONS",
    "REQUIRED_VALUES",
    "CuratedSet",
    "CurationResult",
    "FileReport",
    "InvalidUploadKeyError",
    "Reason",
    "Rules",
    "UploadKey",
    "curate_hotkey",
    "hotkey_prefix",
    "job_zip",
    "listings_key",
    "parse_upload_key",
    "quarantine_key",
    "read_curated",
    "upload_key",
    "write_curated",
]
