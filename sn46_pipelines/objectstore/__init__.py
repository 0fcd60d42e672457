"""One small object-store interface, two backends chosen by URL.

>>> store = open_store("file:///tmp/sn46-store")          # a local folder
>>> store = open_store("s3://bucket/prefix")              # AWS, MinIO or moto (AWS_ENDPOINT_URL)
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from .base import (
    CHUNK_SIZE,
    MULTIPART_UPLOAD,
    STAGING_FILE,
    AccessDeniedError,
    Leftover,
    MissingCredentialsError,
    MissingStoreError,
    NotFoundError,
    ObjectInfo,
    ObjectStore,
    ObjectStoreError,
    PreconditionFailedError,
    StoreOutageError,
    StoreUnavailableError,
    UnsupportedOperationError,
)

if TYPE_CHECKING:  # boto3 loads with .s3: keep it out of `sn46 --help`
    from .s3 import S3Credentials

__all__ = [
    "CHUNK_SIZE",
    "MULTIPART_UPLOAD",
    "STAGING_FILE",
    "AccessDeniedError",
    "InvalidStoreURLError",
    "Leftover",
    "MissingCredentialsError",
    "MissingStoreError",
    "NotFoundError",
    "ObjectInfo",
    "ObjectStore",
    "ObjectStoreError",
    "PreconditionFailedError",
    "StoreOutageError",
    "StoreUnavailableError",
    "UnsupportedOperationError",
    "open_store",
]


class InvalidStoreURLError(ObjectStoreError, ValueError):
    """The store URL has an unknown scheme or lacks a part it needs."""


def open_store(
    url: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    credentials: S3Credentials | None = None,
) -> ObjectStore:
    """Open the store at ``url``: ``file:///abs/path`` or ``s3://bucket[/prefix]``.

    ``endpoint_url`` (else ``AWS_ENDPOINT_URL``) points S3 at MinIO or moto.
    ``credentials`` replace boto3's default chain (variables, profile, role)
    for this store only; :meth:`sn46_pipelines.config.Settings.open_store`
    passes the environment's object-store secret here.
    Opening is lazy: nothing is contacted until the first operation.
    """
    parts = urlsplit(url)
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise InvalidStoreURLError(f"{url}: a file URL needs an absolute path (file:///abs/path)")
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise InvalidStoreURLError(f"{url}: a file URL needs an absolute path (file:///abs/path)")
        if credentials is not None:
            raise InvalidStoreURLError(f"{url}: credentials apply to s3:// stores only")
        from .local import LocalObjectStore

        return LocalObjectStore(path)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise InvalidStoreURLError(f"{url}: an S3 URL needs a bucket (s3://bucket/prefix)")
        from .s3 import S3ObjectStore

        return S3ObjectStore(
            parts.netloc, parts.path, endpoint_url=endpoint_url, region=region, credentials=credentials
        )
    raise InvalidStoreURLError(
        f"{url}: unknown store scheme {parts.scheme or '(none)'!r}; use file:///abs/path or s3://bucket/prefix"
    )
