"""Validate and curate SN46 miner listings (no Dagster here: usable from any script).

>>> result = curate_hotkey(store, hotkey, new_files, existing_listings, Rules(), now)
>>> result.listings          # the hotkey's curated set, one row per zpid
>>> result.quarantine        # this run's rejections, with reason codes
>>> result.stats()["rows_rejected"]["stale"]

Where curated sets are stored, and which uploads are new, is the ingest
layer's business (:mod:`sn46_pipelines.listings.ingest`).
"""

from .curate import CurationResult, FileReport, curate_hotkey
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
    "CurationResult",
    "FileReport",
    "InvalidUploadKeyError",
    "Reason",
    "Rules",
    "UploadKey",
    "curate_hotkey",
    "hotkey_prefix",
    "job_zip",
    "parse_upload_key",
    "upload_key",
]
