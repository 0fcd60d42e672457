"""What a grant allows: presigned POST policies, listing URLs and download URLs.

Everything is signed locally (:mod:`.sigv4`, byte-identical to boto3) with the
gateway's credentials, for the configured endpoint (AWS, MinIO, SeaweedFS
or moto), never a hard-coded host. The POST policy is the only thing that
stops a miner writing outside its folder, so it binds the key to the miner's
own folder, ``data/hotkey={hotkey}/`` (``starts-with``; or one validated job
folder when the miner asks for it; both named in :mod:`..listings.layout`),
with a content-length range, an exact storage class and an expiry. Which
layout a key follows inside the folder (``job_id=...`` parquet,
``epoch=.../zipcode=...`` JSON) is checked at ingest,
where a bad key is quarantined with a reason, not here, where refusing it
would lose today's miners' uploads. No ACL field: new S3 buckets have ACLs
disabled (an ACL other than the owner's is refused) and objects are private
anyway, and a field the policy does not list makes S3 reject the POST, so a
miner cannot add one. S3, MinIO and SeaweedFS enforce these conditions; moto
does not.
"""

from __future__ import annotations

import re
from typing import Any

from ..listings.layout import epoch_folder, job_folder, miner_folder
from .sigv4 import SigV4Presigner

#: The two layouts today's miners write inside their folder.
EXAMPLE_PATHS = (
    job_folder("5F3...xyz", "default_0") + "data_20250620_143052_150.parquet",
    epoch_folder("5F3...xyz", "2026-12-03T08-00-00", "78701") + "data_20261203_091502.json",
)
_JOB_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$")
_UPLOAD_FIELDS = {"x-amz-storage-class": "STANDARD"}


def check_job_id(job_id: str) -> str:
    """Return ``job_id`` if it is safe inside a key; ``ValueError`` otherwise.

    Letters, digits, ``_``, ``-`` and ``.``, at most 128, starting with a letter
    or digit and never ``..``: no slashes, control characters or traversal.
    """
    if not _JOB_ID.match(job_id) or ".." in job_id:
        raise ValueError(
            "job_id must be 1-128 letters, digits, '_', '-' or '.', start with a letter or digit, no '..'"
        )
    return job_id


class Presigner:
    """Presigns for one bucket (and the store's key prefix, if any) with a boto3 client's settings."""

    def __init__(self, client: Any, bucket: str, key_prefix: str, *, min_bytes: int, max_bytes: int) -> None:
        self.signer = SigV4Presigner(client, bucket)
        self.bucket = bucket
        self.key_prefix = key_prefix
        self.min_bytes = min_bytes
        self.max_bytes = max_bytes

    def key(self, key: str) -> str:
        """The bucket key of a store key."""
        return self.key_prefix + key

    def upload_prefix(self, hotkey: str, job_id: str | None = None) -> str:
        """The bucket keys a grant lets ``hotkey`` write: its folder, or that one job's folder."""
        return self.key(job_folder(hotkey, check_job_id(job_id)) if job_id else miner_folder(hotkey))

    def upload_post(self, hotkey: str, job_id: str | None, expires_in: int) -> dict[str, Any]:
        """A presigned POST for keys under :meth:`upload_prefix`.

        Returns boto3's ``{"url": ..., "fields": {...}}``; ``fields["key"]`` ends
        in ``${filename}`` and clients replace it with their full key.
        """
        # A key ending in ${filename} becomes the condition ["starts-with", "$key", allowed].
        return self._post(self.upload_prefix(hotkey, job_id) + "${filename}", expires_in)

    def file_post(self, key: str, expires_in: int) -> dict[str, Any]:
        """A presigned POST for exactly one bucket key (``fields["key"]`` is that key, ready to send)."""
        return self._post(key, expires_in)

    def _post(self, key: str, expires_in: int) -> dict[str, Any]:
        return self.signer.post(
            key,
            dict(_UPLOAD_FIELDS),
            [
                *({name: value} for name, value in _UPLOAD_FIELDS.items()),
                ["content-length-range", self.min_bytes, self.max_bytes],
            ],
            expires_in,
        )

    def list_url(
        self,
        prefix: str,
        expires_in: int,
        *,
        delimiter: str | None = None,
        continuation_token: str | None = None,
    ) -> str:
        """A presigned ListObjectsV2 URL; pass the previous page's ``NextContinuationToken`` to go on."""
        params = {"prefix": self.key(prefix)}
        if delimiter:
            params["delimiter"] = delimiter
        if continuation_token:
            params["continuation-token"] = continuation_token
        return self.signer.list_url(params, expires_in)

    def download_url(self, key: str, expires_in: int) -> str:
        """A presigned GET of one object (``key`` is a bucket key)."""
        return self.signer.object_url(key, expires_in)
