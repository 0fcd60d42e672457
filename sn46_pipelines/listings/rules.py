"""Reason codes and the thresholds curation applies.

The thresholds are data, not code, so a validator can tighten one (say the
freshness window) without touching the checks, and every run records which
rules it used.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum


class Reason(StrEnum):
    """Why a file or a row was quarantined. The values are stable: they end up in parquet and metrics."""

    UNREADABLE_FILE = "unreadable_file"
    SCHEMA_MISMATCH = "schema_mismatch"
    #: The name does not follow the upload pattern, or its row count differs from the footer's.
    FILENAME_ROW_MISMATCH = "filename_row_mismatch"
    FILE_SIZE = "file_size"
    MISSING_REQUIRED = "missing_required"
    IMPLAUSIBLE_VALUE = "implausible_value"
    ZIP_MISMATCH = "zip_mismatch"
    STALE = "stale"
    FUTURE_DATE = "future_date"
    DUPLICATE = "duplicate"
    #: An epoch/zipcode upload that is not JSON, or not the document shape.
    MALFORMED_JSON = "malformed_json"
    #: A document whose ``listing_count`` differs from the listings it holds.
    LISTING_COUNT_MISMATCH = "listing_count_mismatch"
    #: A document whose ``miner_hotkey`` is not the hotkey whose folder holds it.
    HOTKEY_MISMATCH = "hotkey_mismatch"


#: Every reason code, in a fixed order (the order of the quarantine's dictionary).
REASONS: tuple[str, ...] = tuple(r.value for r in Reason)

#: (south, north, west, east) boxes around the states and Puerto Rico: a point
#: outside all of them cannot be a US listing (null island, London, a swapped lat/lon).
US_REGIONS: tuple[tuple[float, float, float, float], ...] = (
    (24.3, 49.5, -125.0, -66.8),  # contiguous states
    (51.0, 71.6, -180.0, -129.9),  # Alaska
    (18.8, 22.4, -160.4, -154.7),  # Hawaii
    (17.8, 18.6, -67.4, -65.2),  # Puerto Rico
)


@dataclass(frozen=True, slots=True)
class Rules:
    """Thresholds for the file and row checks; the defaults are SN46's."""

    #: Smallest and largest accepted upload, in bytes (the upload policy's range).
    min_file_size: int = 1024
    max_file_size: int = 5 * 1024**3
    #: Rows scraped longer ago than this are ``stale``.
    freshness: timedelta = timedelta(days=30)
    #: Rows dated up to this far ahead of ``now`` are accepted: miners' clocks drift.
    clock_skew: timedelta = timedelta(minutes=5)
    #: A zpid uploaded again for the same job within this long of an earlier file is a ``duplicate``;
    #: later, it is an update of the listing (miners re-scrape their zip codes every epoch).
    duplicate_window: timedelta = timedelta(hours=1)
    #: Inclusive plausible ranges of numeric columns (nulls in optional columns are allowed).
    price: tuple[float, float] = (10_000.0, 50_000_000.0)
    bedrooms: tuple[float, float] = (0.0, 20.0)
    bathrooms: tuple[float, float] = (0.0, 20.0)
    living_area: tuple[float, float] = (100.0, 100_000.0)
    us_regions: tuple[tuple[float, float, float, float], ...] = US_REGIONS

    def ranges(self) -> dict[str, tuple[float, float]]:
        """Column -> inclusive plausible range, in the order they are checked."""
        return {
            "price": self.price,
            "bedrooms": self.bedrooms,
            "bathrooms": self.bathrooms,
            "living_area": self.living_area,
        }
