"""Validate and curate SN46 miner listings (no Dagster here: usable from any script).

>>> result = curate_hotkey(store, hotkey, new_files, existing_listings, Rules(), now)
>>> result.listings          # the hotkey's curated set, one row per zpid
>>> result.quarantine        # this run's rejections, with reason codes
>>> result.stats()["rows_rejected"]["stale"]

Where curated sets are stored, and which uploads are new, is the ingest
layer's business (:mod:`sn46_pipelines.listings.ingest`).

The names below load on first use, so importing a light submodule (the
gateway and the IAM policies import :mod:`.layout`) does not pull in pyarrow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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
#: The submodules that define the names above (those under ``TYPE_CHECKING``).
_SUBMODULES = ("schema", "rules", "keys", "curate")


def __getattr__(name: str) -> Any:
    if name in __all__:
        for submodule in _SUBMODULES:
            module = importlib.import_module(f".{submodule}", __name__)
            if hasattr(module, name):
                value = getattr(module, name)
                globals()[name] = value  # found directly from now on
                return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
