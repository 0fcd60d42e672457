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

from ..errors import SN46Error
from .layout import EPOCH_UPLOAD_KEY, JOB_UPLOAD_KEY, epoch_folder, job_folder, miner_folder

#: The two upload formats: a job's parquet file, or an epoch/zipcode JSON document.
PARQUET = "parquet"
JSON = "json"
_JOB_ZIP = re.compile(r"(?:^|_)zip_(\d{5})(?:_|$)")
_STAMP = "%Y%m%d_%H%M%S"


class InvalidUploadKeyError(SN46Error, ValueError):
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
    if match := JOB_UPLOAD_KEY.fullmatch(key):
        return UploadKey(
            key=key,
            hotkey=match["hotkey"],
            job_id=match["job_id"],
            timestamp=_timestamp(key, match["stamp"]),
            rows=int(match["rows"]),
            suffix=match["suffix"],
        )
    if match := EPOCH_UPLOAD_KEY.fullmatch(key):
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
    return f"{job_folder(hotkey, job_id)}{name}.parquet"


def epoch_upload_key(
    hotkey: str, epoch_id: str, zipcode: str, timestamp: datetime, *, doubled: bool = False
) -> str:
    """Build the key of an epoch/zipcode document; ``doubled`` spells it as today's resi client does."""
    if timestamp.tzinfo is not None:
        timestamp = timestamp.astimezone(UTC)
    return f"{epoch_folder(hotkey, epoch_id, zipcode, doubled=doubled)}data_{timestamp.strftime(_STAMP)}.json"


#: The folder holding every upload of a hotkey (:func:`.layout.miner_folder`), under the name this package
#: exports.
hotkey_prefix = miner_folder
