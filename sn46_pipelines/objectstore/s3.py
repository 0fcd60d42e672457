"""An S3 bucket (AWS, MinIO or moto) as an object store (``s3://bucket/prefix``).

Conditional writes use S3's own ``If-None-Match: *`` and ``If-Match``
headers, so the guarantee comes from the server, not from this process.
Throttling, 5xx and connection errors are retried with backoff by botocore's
"standard" retry mode; a 412 is a final answer and never retried.
"""

from __future__ import annotations

import builtins
import contextlib
import hashlib
import os
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError
from pydantic import SecretStr

from .base import (
    CHUNK_SIZE,
    MULTIPART_UPLOAD,
    AccessDeniedError,
    Body,
    Leftover,
    MissingCredentialsError,
    MissingStoreError,
    NotFoundError,
    ObjectInfo,
    ObjectStore,
    ObjectStoreError,
    PreconditionFailedError,
    RequestCounter,
    StoreOutageError,
    StoreUnavailableError,
    UnsupportedOperationError,
)

T = TypeVar("T")

#: Objects smaller than this go up in one PUT; larger streams as multipart uploads.
MULTIPART_THRESHOLD = CHUNK_SIZE
DELETE_BATCH = 1000

_UNAVAILABLE_CODES = {
    "NoSuchBucket": "bucket does not exist",
    "AccessDenied": "access denied",
    "AllAccessDisabled": "access denied",
    "InvalidAccessKeyId": "wrong credentials (unknown access key)",
    "SignatureDoesNotMatch": "wrong credentials (bad secret key)",
    "ExpiredToken": "credentials expired",
    "InvalidToken": "wrong credentials (bad session token)",
    "403": "access denied",
}
_DENIED_CODES = {"AccessDenied", "AllAccessDisabled", "403"}
#: Answers that say "try again later" (botocore has retried them already).
_OUTAGE_CODES = {"InternalError", "ServiceUnavailable", "SlowDown", "RequestTimeout", "Throttling"}
_NOT_FOUND_CODES = {"NoSuchKey", "NoSuchUpload", "404", "NotFound"}
_PRECONDITION_CODES = {"PreconditionFailed", "412"}


@dataclass(frozen=True)
class S3Credentials:
    """Static keys for one store's S3 client, instead of boto3's default chain.

    Only this store's client uses them: the process's own AWS identity (task
    role, profile) stays in charge of every other AWS call. The secret parts
    are :class:`~pydantic.SecretStr`, so a repr, a log line or an error shows
    ``**********``; the access key id is an identifier, shown as AWS shows it.
    ``origin`` says where the keys came from, for error messages.
    """

    access_key_id: str
    secret_access_key: SecretStr
    session_token: SecretStr | None = None
    origin: str = "explicit credentials"

    def __post_init__(self) -> None:
        if not self.access_key_id or not self.secret_access_key.get_secret_value():
            raise ValueError(f"S3 credentials from {self.origin}: empty access key id or secret key")


class S3ObjectStore(ObjectStore):
    """Objects under ``prefix`` in ``bucket``, through one thread-safe boto3 client."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        credentials: S3Credentials | None = None,
        max_attempts: int = 6,
        client: Any = None,
    ) -> None:
        if not bucket:
            raise ObjectStoreError("s3://: the URL names no bucket")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.url = f"s3://{bucket}/{self.prefix}".rstrip("/")
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL") or None
        self.region = region or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        self.requests = RequestCounter()
        self._bucket_confirmed = False
        self._credentials_origin = credentials.origin if credentials else None
        self._client = client or boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            **_client_keys(credentials),
            config=Config(
                retries={"mode": "standard", "max_attempts": max_attempts},
                max_pool_connections=32,
                # Conditional writes need the exact body; skip optional CRC trailers that
                # some S3-compatible servers reject.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )
        self._client.meta.events.register("before-send.s3", self._count_request)
        self._transfer = TransferConfig(
            multipart_threshold=MULTIPART_THRESHOLD,
            multipart_chunksize=CHUNK_SIZE,
            max_concurrency=8,
        )

    @property
    def client(self) -> Any:
        """The underlying boto3 S3 client (for presigning and other S3-only features)."""
        return self._client

    def _count_request(self, request: Any, **_: Any) -> None:
        self.requests.add(request.method.lower())

    def _key(self, key: str) -> str:
        if not key or key.startswith("/"):
            raise ObjectStoreError(f"{self.url}: invalid key {key!r}")
        return self.prefix + key

    def _unprefix(self, full_key: str) -> str:
        return full_key[len(self.prefix) :]

    # -- error mapping ----------------------------------------------------------
    def _call(self, fn: Callable[..., T], key: str | None = None, **kwargs: Any) -> T:
        """Run one boto3 call and turn its failures into this package's errors."""
        try:
            return fn(**kwargs)
        except ClientError as exc:
            raise self._translate(exc, key) from exc
        except NoCredentialsError as exc:
            raise MissingCredentialsError(f"{self.url}: no AWS credentials found") from exc
        except BotoCoreError as exc:
            raise self._unreachable(exc) from exc

    def _unreachable(self, exc: BotoCoreError) -> StoreUnavailableError:
        """A connection failure or timeout is an outage; any other botocore error a misconfiguration."""
        outage = isinstance(exc, (BotoConnectionError, HTTPClientError))
        return (StoreOutageError if outage else StoreUnavailableError)(
            f"{self.url}: {type(exc).__name__}: {exc}"
        )

    def _translate(self, exc: ClientError, key: str | None) -> ObjectStoreError:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", ""))
        status = str(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        if code in _PRECONDITION_CODES or status == "412":
            return PreconditionFailedError(self.url, key or "", "S3 answered 412")
        if code == "NotImplemented" or status == "501":
            return UnsupportedOperationError(f"{self.url}: the server does not implement this ({code})")
        if code in _UNAVAILABLE_CODES:
            credentials = self._credentials_origin and code != "NoSuchBucket"
            origin = f"; credentials from {self._credentials_origin}" if credentials else ""
            error_type = (
                AccessDeniedError
                if code in _DENIED_CODES
                else MissingStoreError
                if code == "NoSuchBucket"
                else StoreUnavailableError
            )
            return error_type(f"{self.url}: {_UNAVAILABLE_CODES[code]} ({code}){origin}")
        if code in _NOT_FOUND_CODES and key is not None:
            # A HEAD on a missing bucket also says 404: make sure the bucket is there.
            self._confirm_bucket()
            return NotFoundError(self.url, key)
        if code in _OUTAGE_CODES or status.startswith("5"):
            return StoreOutageError(f"{self.url}: S3 answered {code or status}, try again later")
        if code in ("InvalidRange", "416"):
            return ObjectStoreError(f"{self.url}: byte range outside {key!r}")
        return ObjectStoreError(f"{self.url}: S3 error {code or status}: {error.get('Message', exc)}")

    def _confirm_bucket(self) -> None:
        if not self._bucket_confirmed:
            self.check()

    def _info(self, key: str, size: int, etag: str, mtime: Any) -> ObjectInfo:
        return ObjectInfo(key=key, size=int(size), etag=etag, mtime=mtime)

    # -- reads ----------------------------------------------------------------
    def head(self, key: str) -> ObjectInfo:
        r = self._call(self._client.head_object, key, Bucket=self.bucket, Key=self._key(key))
        return self._info(key, r["ContentLength"], r["ETag"], r["LastModified"])

    def get(self, key: str) -> bytes:
        with self.open(key) as body:
            return body.read()

    def get_range(self, key: str, start: int, end: int | None = None) -> bytes:
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid byte range {start}..{end}")
        if end == start:
            return b""
        spec = f"bytes={start}-" if end is None else f"bytes={start}-{end - 1}"
        r = self._call(self._client.get_object, key, Bucket=self.bucket, Key=self._key(key), Range=spec)
        with contextlib.closing(r["Body"]) as body:
            return body.read()

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        r = self._call(self._client.get_object, key, Bucket=self.bucket, Key=self._key(key))
        with contextlib.closing(r["Body"]) as body:
            yield body

    def download(self, key: str, path: str | os.PathLike[str]) -> ObjectInfo:
        dest = Path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        try:
            info = self.head(key)
            self._call(
                self._client.download_file,
                key,
                Bucket=self.bucket,
                Key=self._key(key),
                Filename=str(tmp),
                Config=self._transfer,
            )
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return info

    def _pages(self, prefix: str, start_after: str | None, delimiter: str | None) -> Iterator[dict]:
        kwargs: dict[str, Any] = {"Prefix": self.prefix + prefix}
        if start_after:
            kwargs["StartAfter"] = self.prefix + start_after
        if delimiter:
            kwargs["Delimiter"] = delimiter
        return self._paginate("list_objects_v2", **kwargs)

    def _paginate(self, operation: str, key: str | None = None, **kwargs: Any) -> Iterator[dict]:
        """Every page of a paginated call on this bucket, each request's failure mapped by :meth:`_call`."""
        pages = iter(self._client.get_paginator(operation).paginate(Bucket=self.bucket, **kwargs))
        while (page := self._call(lambda: next(pages, None), key)) is not None:
            yield page

    def list(
        self, prefix: str = "", *, start_after: str | None = None, delimiter: str | None = None
    ) -> Iterator[ObjectInfo]:
        for page in self._pages(prefix, start_after, delimiter):
            for item in page.get("Contents", ()):
                yield self._info(
                    self._unprefix(item["Key"]), item["Size"], item["ETag"], item["LastModified"]
                )

    def list_prefixes(
        self, prefix: str = "", *, delimiter: str = "/", start_after: str | None = None
    ) -> Iterator[str]:
        for page in self._pages(prefix, start_after, delimiter):
            for item in page.get("CommonPrefixes", ()):
                yield self._unprefix(item["Prefix"])

    # -- writes ---------------------------------------------------------------
    def put(self, key: str, data: Body) -> str:
        if isinstance(data, (bytes, bytearray, memoryview)):
            return self._put_object(key, bytes(data))
        first = data.read(MULTIPART_THRESHOLD)
        if len(first) < MULTIPART_THRESHOLD:
            return self._put_object(key, first)
        return self._multipart(key, first, data)

    def _put_object(self, key: str, body: bytes | BinaryIO, **conditions: str) -> str:
        r = self._call(
            self._client.put_object, key, Bucket=self.bucket, Key=self._key(key), Body=body, **conditions
        )
        return r["ETag"]

    def _multipart(self, key: str, first: bytes, rest: BinaryIO) -> str:
        """Upload a stream part by part: one part in memory at a time."""
        full_key = self._key(key)
        upload_id = self._call(self._client.create_multipart_upload, key, Bucket=self.bucket, Key=full_key)[
            "UploadId"
        ]
        parts = []
        try:
            chunk, number = first, 1
            while chunk:
                r = self._call(
                    self._client.upload_part,
                    key,
                    Bucket=self.bucket,
                    Key=full_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=chunk,
                )
                parts.append({"PartNumber": number, "ETag": r["ETag"]})
                chunk, number = rest.read(CHUNK_SIZE), number + 1
            r = self._call(
                self._client.complete_multipart_upload,
                key,
                Bucket=self.bucket,
                Key=full_key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            with contextlib.suppress(Exception):
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=full_key, UploadId=upload_id)
            raise
        return r["ETag"]

    def upload(self, key: str, path: str | os.PathLike[str]) -> str:
        self._call(
            self._client.upload_file,
            key,
            Filename=str(path),
            Bucket=self.bucket,
            Key=self._key(key),
            Config=self._transfer,
        )
        return self.head(key).etag

    def _conditional_put(self, key: str, data: Body, **conditions: str) -> str:
        body = data if isinstance(data, (bytes, bytearray, memoryview)) else _seekable(data)
        try:
            return self._put_object(key, body, **conditions)
        except PreconditionFailedError as exc:
            if self._lost_response_of_own_write(exc, key, body):
                return self.head(key).etag
            raise

    def _lost_response_of_own_write(self, exc: PreconditionFailedError, key: str, body: Any) -> bool:
        """True when a retried PUT met the bytes its own first attempt already wrote.

        botocore retries a PUT whose response was lost; the retry then fails its
        own precondition. Only then, and only for bytes we can hash, compare the
        stored object's MD5 etag with ours.
        """
        cause = exc.__cause__
        attempts = getattr(cause, "response", {}).get("ResponseMetadata", {}).get("RetryAttempts", 0)
        if not attempts or not isinstance(body, (bytes, bytearray, memoryview)):
            return False
        try:
            stored = self.head(key).etag.strip('"')
        except NotFoundError:
            return False
        return stored == hashlib.md5(body, usedforsecurity=False).hexdigest()

    def put_if_absent(self, key: str, data: Body) -> str:
        return self._conditional_put(key, data, IfNoneMatch="*")

    def put_if_match(self, key: str, data: Body, etag: str) -> str:
        try:
            return self._conditional_put(key, data, IfMatch=etag)
        except NotFoundError:
            raise PreconditionFailedError(self.url, key, "object does not exist") from None

    def delete(self, key: str) -> None:
        self._call(self._client.delete_object, key, Bucket=self.bucket, Key=self._key(key))

    def delete_if_match(self, key: str, etag: str) -> None:
        try:
            self._call(self._client.delete_object, key, Bucket=self.bucket, Key=self._key(key), IfMatch=etag)
        except NotFoundError:  # AWS and moto answer 404 for a missing key, SeaweedFS 412
            raise PreconditionFailedError(self.url, key, "object does not exist") from None

    def delete_many(self, keys: Iterable[str]) -> int:
        count = 0
        batch: builtins.list[str] = []
        for key in keys:
            batch.append(key)
            if len(batch) == DELETE_BATCH:
                count += self._delete_batch(batch)
                batch = []
        if batch:
            count += self._delete_batch(batch)
        return count

    def _delete_batch(self, keys: builtins.list[str]) -> int:
        r = self._call(
            self._client.delete_objects,
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": self._key(k)} for k in keys], "Quiet": True},
        )
        if errors := r.get("Errors"):
            first = errors[0]
            raise ObjectStoreError(
                f"{self.url}: {len(errors)} of {len(keys)} deletes failed, "
                f"first {first.get('Key')!r}: {first.get('Code')}"
            )
        return len(keys)

    def copy(self, source_key: str, dest_key: str) -> str:
        r = self._call(
            self._client.copy_object,
            source_key,
            Bucket=self.bucket,
            Key=self._key(dest_key),
            CopySource={"Bucket": self.bucket, "Key": self._key(source_key)},
        )
        return r["CopyObjectResult"]["ETag"]

    def leftovers(self, *, older_than: float) -> builtins.list[Leftover]:
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than)
        found = []
        for page in self._paginate("list_multipart_uploads", Prefix=self.prefix):
            for upload in page.get("Uploads", ()):
                if upload["Initiated"] >= cutoff:
                    continue
                key, upload_id = upload["Key"], upload["UploadId"]
                size = self._uploaded_bytes(key, upload_id)
                if size is not None:
                    started = upload["Initiated"]
                    found.append(Leftover(MULTIPART_UPLOAD, self._unprefix(key), size, started, upload_id))
        return sorted(found, key=lambda leftover: leftover.started)

    def _uploaded_bytes(self, full_key: str, upload_id: str) -> int | None:
        """Bytes of the parts an upload holds, or ``None`` if it ended meanwhile."""
        try:
            pages = self._paginate("list_parts", full_key, Key=full_key, UploadId=upload_id)
            return sum(part["Size"] for page in pages for part in page.get("Parts", ()))
        except NotFoundError:  # NoSuchUpload: completed or aborted since the listing
            return None

    def remove_leftover(self, leftover: Leftover) -> None:
        if leftover.kind != MULTIPART_UPLOAD or not leftover.upload_id:
            raise ObjectStoreError(f"{self.url}: {leftover.kind} {leftover.key!r} is not a multipart upload")
        with contextlib.suppress(NotFoundError):  # NoSuchUpload: completed or aborted meanwhile
            self._call(
                self._client.abort_multipart_upload,
                leftover.key,
                Bucket=self.bucket,
                Key=self._key(leftover.key),
                UploadId=leftover.upload_id,
            )

    def check(self) -> None:
        try:
            self._client.head_bucket(Bucket=self.bucket)
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code", ""))
            if code in ("404", "NoSuchBucket", "NotFound"):
                raise MissingStoreError(f"{self.url}: bucket does not exist") from exc
            raise self._translate(exc, None) from exc
        except NoCredentialsError as exc:
            raise MissingCredentialsError(f"{self.url}: no AWS credentials found") from exc
        except BotoCoreError as exc:
            raise self._unreachable(exc) from exc
        self._bucket_confirmed = True

    def arrow_filesystem(self) -> tuple[object, str]:
        from pyarrow import fs

        credentials = self._client._request_signer._credentials  # the client's resolved chain
        frozen = credentials.get_frozen_credentials() if credentials else None
        options: dict[str, Any] = {"region": self._client.meta.region_name or "us-east-1"}
        if frozen is not None:
            options.update(
                access_key=frozen.access_key, secret_key=frozen.secret_key, session_token=frozen.token
            )
        if self.endpoint_url:
            scheme, _, host = self.endpoint_url.partition("://")
            options.update(endpoint_override=host.rstrip("/"), scheme=scheme)
        return fs.S3FileSystem(**options), f"{self.bucket}/{self.prefix}".rstrip("/")


def _client_keys(credentials: S3Credentials | None) -> dict[str, str | None]:
    """boto3 client arguments for ``credentials``; none at all lets boto3's default chain decide."""
    if credentials is None:
        return {}
    token = credentials.session_token
    return {
        "aws_access_key_id": credentials.access_key_id,
        "aws_secret_access_key": credentials.secret_access_key.get_secret_value(),
        "aws_session_token": token.get_secret_value() if token else None,
    }


def _seekable(stream: BinaryIO) -> BinaryIO | bytes:
    """botocore needs a length for a single PUT: pass seekable streams through, read others."""
    try:
        stream.seek(0, os.SEEK_CUR)
    except (AttributeError, OSError, ValueError):
        return stream.read()
    return stream
