"""Upload keys: ``data/hotkey={hk}/job_id={job}/data_{YYYYmmdd_HHMMSS}_{rows}.parquet``.

The key is the only place a miner states which job a file answers and how
many rows it holds, so it is parsed strictly: a file whose name lies about
its row count, or that cannot be attributed, is quarantined whole.
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
    #: The row count the miner declares; must equal the parquet footer's.
    rows: int
    #: Optional 16-hex-digit suffix some miners add to make names unique.
    suffix: str | None = None

    @property
    def job_zip(self) -> str | None:
        """The zip code the job is about, when its id names one."""
        return job_zip(self.job_id)


def job_zip(job_id: str) -> str | None:
    """The 5-digit zip a job id names (``zillow_premium_zip_78701_sold`` -> ``78701``), else None."""
    match = _JOB_ZIP.search(job_id)
    return match.group(1) if match else None


def parse_upload_key(key: str) -> UploadKey:
    """Parse an upload key; :class:`InvalidUploadKeyError` says what is wrong with it."""
    match = _KEY.fullmatch(key)
    if match is None:
        raise InvalidUploadKeyError(
            f"{key!r} is not an upload key: expected "
            "data/hotkey={hotkey}/job_id={job_id}/data_{YYYYmmdd_HHMMSS}_{rows}[_{16 hex}].parquet"
        )
    try:
        stamp = datetime.strptime(match["stamp"], _STAMP).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidUploadKeyError(f"{key!r}: {match['stamp']!r} is not a valid date and time") from None
    return UploadKey(
        key=key,
        hotkey=match["hotkey"],
        job_id=match["job_id"],
        timestamp=stamp,
        rows=int(match["rows"]),
        suffix=match["suffix"],
    )


def upload_key(hotkey: str, job_id: str, timestamp: datetime, rows: int, suffix: str | None = None) -> str:
    """Build the key a miner would upload a file of ``rows`` rows under (``timestamp`` in UTC)."""
    if timestamp.tzinfo is not None:
        timestamp = timestamp.astimezone(UTC)
    name = f"data_{timestamp.strftime(_STAMP)}_{rows}" + (f"_{suffix}" if suffix else "")
    return f"{UPLOAD_PREFIX}hotkey={hotkey}/job_id={job_id}/{name}.parquet"


def hotkey_prefix(hotkey: str) -> str:
    """The folder holding every upload of ``hotkey``."""
    return f"{UPLOAD_PREFIX}hotkey={hotkey}/"
