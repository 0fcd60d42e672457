"""Upload keys, in the two layouts SN46 miners write.

* job files: ``data/hotkey={hk}/job_id={job}/data_{YYYYmmdd_HHMMSS}_{rows}.parquet``;
* epoch/zipcode documents: ``data/hotkey={hk}/epoch={epoch_id}/zipcode={zip}/data_{YYYYmmdd_HHMMSS}.json``,
  which today's resi client writes under its grant's folder again
  (``data/hotkey={hk}/data/hotkey={hk}/epoch=...``): both spellings are the same upload.

The key is the only place a miner states which job a file answers (and, for
parquet, how many rows it holds), so it is parsed strictly: a file whose name
lies about its row count, or that cannot be attributed, is quarantined whole.
An epoch document answers the job ``epoch_{epoch_id}_zip_{zip}``, so the zip
check every job's rows get (:func:`job_zip`) applies to it unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime

#: Prefix of the miners' upload area; nothing under it is ever modified by the pipeline.
UPLOAD_PREFIX = "data/"

_KEY = re.compile(
    r"data/hotkey=(?P<hotkey>[^/=]+)/job_id=(?P<job_id>[^/]+)/"
    r"data_(?P<stamp>\d{8}_\d{6})_(?P<rows>\d+)(?:_(?P<suffix>[0-9a-f]{16}))?\.parquet"
)
#: ``epoch=`` ids are times like ``2026-12-03T08-00-00``: no ``/`` and no ``_`` (the job id joins with ``_``).
_EPOCH_KEY = re.compile(
    r"data/hotkey=(?P<hotkey>[^/=]+)/(?:data/hotkey=(?P=hotkey)/)?"
    r"epoch=(?P<epoch>[0-9A-Za-z:.+-]+)/zipcode=(?P<zip>\d{5})/data_(?P<stamp>\d{8}_\d{6})\.json"
)
#: The two upload formats: a job's parquet file, or an epoch/zipcode JSON document.
PARQUET = "parquet"
JSON = "json"
_JOB_ZIP = re.compile(r"(?:^|_)zip_(\d{5})(?:_|$)")
_STAMP = "%Y%m%d_%H%M%S"


class InvalidUploadKeyError(ValueError):
    """A key in the upload area does not follow the upload naming rule."""


@dataclass(frozen=True, slots=True)
class UploadKey:
    """What an upload's key says about it."""

    key: str
    hotkey: str
    job_id: str
    #: When the miner says it wrote the file (UTC, from the name; not the object's mtime).
    timestamp: datetime
    #: The row count the name declares (must equal the parquet footer's); None for a JSON
    #: document, which declares its count inside (``listing_count``).
    rows: int | None
    #: Optional 16-hex-digit suffix some miners add to make names unique.
    suffix: str | None = None
    #: :data:`PARQUET` or :data:`JSON`: how the file is read.
    format: str = PARQUET
    #: The epoch an epoch/zipcode document answers (None for a job file).
    epoch_id: str | None = None

    @property
    def job_zip(self) -> str | None:
        """The zip code the job is about, when its id names one."""
        return job_zip(self.job_id)


def job_zip(job_id: str) -> str | None:
    """The 5-digit zip a job id names (``zillow_premium_zip_78701_sold`` -> ``78701``), else None."""
    match = _JOB_ZIP.search(job_id)
    return match.group(1) if match else None


def epoch_job_id(epoch_id: str, zipcode: str) -> str:
    """The job an epoch/zipcode document answers (``epoch_2026-12-03T08-00-00_zip_78701``)."""
    return f"epoch_{epoch_id}_zip_{zipcode}"


def parse_upload_key(key: str) -> UploadKey:
    """Parse an upload key of either layout; :class:`InvalidUploadKeyError` says what is wrong with it."""
    if match := _KEY.fullmatch(key):
        return UploadKey(
            key=key,
            hotkey=match["hotkey"],
            job_id=match["job_id"],
            timestamp=_timestamp(key, match["stamp"]),
            rows=int(match["rows"]),
            suffix=match["suffix"],
        )
    if match := _EPOCH_KEY.fullmatch(key):
        return UploadKey(
            key=key,
            hotkey=match["hotkey"],
            job_id=epoch_job_id(match["epoch"], match["zip"]),
            timestamp=_timestamp(key, match["stamp"]),
            rows=None,
            format=JSON,
            epoch_id=match["epoch"],
        )
    raise InvalidUploadKeyError(
        f"{key!r} is not an upload key: expected "
        "data/hotkey={hotkey}/job_id={job_id}/data_{YYYYmmdd_HHMMSS}_{rows}[_{16 hex}].parquet or "
        "data/hotkey={hotkey}/epoch={epoch_id}/zipcode={5 digits}/data_{YYYYmmdd_HHMMSS}.json"
    )


def _timestamp(key: str, stamp: str) -> datetime:
    try:
        return datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidUploadKeyError(f"{key!r}: {stamp!r} is not a valid date and time") from None


def upload_key(hotkey: str, job_id: str, timestamp: datetime, rows: int, suffix: str | None = None) -> str:
    """Build the key a miner would upload a file of ``rows`` rows under (``timestamp`` in UTC)."""
    if timestamp.tzinfo is not None:
        timestamp = timestamp.astimezone(UTC)
    name = f"data_{timestamp.strftime(_STAMP)}_{rows}" + (f"_{suffix}" if suffix else "")
    return f"{UPLOAD_PREFIX}hotkey={hotkey}/job_id={job_id}/{name}.parquet"


def epoch_upload_key(
    hotkey: str, epoch_id: str, zipcode: str, timestamp: datetime, *, doubled: bool = False
) -> str:
    """Build the key of an epoch/zipcode document; ``doubled`` spells it as today's resi client does."""
    if timestamp.tzinfo is not None:
        timestamp = timestamp.astimezone(UTC)
    path = f"hotkey={hotkey}/epoch={epoch_id}/zipcode={zipcode}/data_{timestamp.strftime(_STAMP)}.json"
    return f"{UPLOAD_PREFIX}hotkey={hotkey}/{UPLOAD_PREFIX}{path}" if doubled else UPLOAD_PREFIX + path


def hotkey_prefix(hotkey: str) -> str:
    """The folder holding every upload of ``hotkey``."""
    return f"{UPLOAD_PREFIX}hotkey={hotkey}/"
