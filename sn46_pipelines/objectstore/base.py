"""The object-store interface every backend implements.

The model store, the listings pipeline and the gateway only ever talk to this
interface, so a folder on disk and an S3 bucket (AWS, MinIO, moto) behave the
same. The two conditional writes are the foundation of the model store's
atomic commits: they must hold between processes, not just threads.
"""

from __future__ import annotations

import abc
import builtins
import os
import threading
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from ..errors import SN46Error, TransientError

#: Default part size for streamed copies and multipart uploads.
CHUNK_SIZE = 8 * 1024 * 1024

Body = bytes | BinaryIO


class ObjectStoreError(SN46Error):
    """Base class of every object-store failure."""


class NotFoundError(ObjectStoreError, KeyError):
    """The key does not exist."""

    def __init__(self, store_url: str, key: str) -> None:
        super().__init__(f"{store_url}: no object at key {key!r}")
        self.key = key

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class PreconditionFailedError(ObjectStoreError):
    """A conditional write lost: the key exists (create-if-absent) or changed (etag mismatch)."""

    def __init__(self, store_url: str, key: str, detail: str) -> None:
        super().__init__(f"{store_url}: precondition failed for {key!r}: {detail}")
        self.key = key


class UnsupportedOperationError(ObjectStoreError):
    """The server does not implement this request (S3 answered 501 NotImplemented)."""


class StoreUnavailableError(ObjectStoreError):
    """The store itself cannot be used: missing bucket or folder, denied access, bad credentials.

    Distinct from :class:`NotFoundError` so callers never mistake an outage or a
    misconfiguration for an empty store. Not retried: a person must fix these;
    an outage is the subclass :class:`StoreOutageError`.
    """


class StoreOutageError(StoreUnavailableError, TransientError):
    """The store is out of reach for now: no connection, a timeout, or 5xx/throttling after
    botocore's own retries. The one object-store error a retry policy retries."""


class AccessDeniedError(StoreUnavailableError):
    """This identity may not make the request (S3 answered 403), though the store may be fine."""


class MissingStoreError(StoreUnavailableError):
    """The bucket or the folder itself does not exist: something to create, not to wait for."""


class MissingCredentialsError(StoreUnavailableError):
    """No credentials were found for an S3 store (no keys, profile, role or instance identity)."""


@dataclass(frozen=True, slots=True)
class ObjectInfo:
    """What a HEAD or a listing says about one object."""

    key: str
    size: int
    etag: str
    mtime: datetime


#: :attr:`Leftover.kind` of a folder store's temporary file.
STAGING_FILE = "staging_file"
#: :attr:`Leftover.kind` of an S3 multipart upload never completed nor aborted.
MULTIPART_UPLOAD = "multipart_upload"


@dataclass(frozen=True, slots=True)
class Leftover:
    """What a write that never finished left behind (its process was killed mid-write).

    Invisible to listings and reads, but it holds disk or bucket space until
    :meth:`ObjectStore.remove_leftover` removes it.
    """

    kind: str
    #: The staging file's name, or the key the multipart upload was writing.
    key: str
    size: int
    started: datetime
    upload_id: str | None = None


class RequestCounter:
    """Counts backend requests, so benchmarks and tests can check request budgets."""

    def __init__(self) -> None:
        self.total = 0
        self.by_operation: dict[str, int] = {}
        self._lock = threading.Lock()

    def add(self, operation: str, n: int = 1) -> None:
        with self._lock:
            self.total += n
            self.by_operation[operation] = self.by_operation.get(operation, 0) + n

    def reset(self) -> None:
        with self._lock:
            self.total = 0
            self.by_operation = {}


class ObjectStore(abc.ABC):
    """A flat key space of immutable-until-replaced objects.

    Keys are ``/``-separated strings without a leading slash. Listings return
    keys in UTF-8 byte order, like S3. Every method raises
    :class:`StoreUnavailableError` when the store itself is unusable.
    """

    url: str
    requests: RequestCounter

    # -- reads -------------------------------------------------------------
    @abc.abstractmethod
    def head(self, key: str) -> ObjectInfo:
        """Size, etag and modification time of ``key``; :class:`NotFoundError` if absent."""

    @abc.abstractmethod
    def get(self, key: str) -> bytes:
        """The whole object. Use :meth:`open` or :meth:`download` for large ones."""

    @abc.abstractmethod
    def get_range(self, key: str, start: int, end: int | None = None) -> bytes:
        """Bytes ``start`` (inclusive) to ``end`` (exclusive; ``None`` = to the end)."""

    @abc.abstractmethod
    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A streaming, read-only file object over the object's bytes."""

    @abc.abstractmethod
    def download(self, key: str, path: str | os.PathLike[str]) -> ObjectInfo:
        """Stream the object into a local file (written whole, then renamed into place)."""

    @abc.abstractmethod
    def list(
        self, prefix: str = "", *, start_after: str | None = None, delimiter: str | None = None
    ) -> Iterator[ObjectInfo]:
        """Objects whose key starts with ``prefix``, in key order, however many there are.

        With ``delimiter``, only objects directly under ``prefix`` (use
        :meth:`list_prefixes` for the "folders"). ``start_after`` skips keys
        that sort at or before it.
        """

    @abc.abstractmethod
    def list_prefixes(
        self, prefix: str = "", *, delimiter: str = "/", start_after: str | None = None
    ) -> Iterator[str]:
        """The common prefixes ("folders", ending in ``delimiter``) directly under ``prefix``."""

    def exists(self, key: str) -> bool:
        """True when ``key`` exists."""
        try:
            self.head(key)
        except NotFoundError:
            return False
        return True

    # -- writes ------------------------------------------------------------
    @abc.abstractmethod
    def put(self, key: str, data: Body) -> str:
        """Write ``data`` (bytes or a readable stream) to ``key``; return the new etag.

        Streams are copied in chunks and never held whole in memory; large
        streams go up as multipart uploads on S3.
        """

    @abc.abstractmethod
    def upload(self, key: str, path: str | os.PathLike[str]) -> str:
        """Upload a local file (multipart and parallel where the backend can); return the etag."""

    def begin_upload(self, path: str | os.PathLike[str]) -> PendingUpload:
        """Start uploading a local file whose key is decided later (for example, by its hash).

        Where moving bytes into the store is the slow part and naming them is
        cheap (a folder store: copy now, rename later), the transfer starts
        here, so a caller can hash the file at the same time. The default
        transfers nothing until :meth:`PendingUpload.publish`.
        """
        return PendingUpload(self, Path(path))

    @abc.abstractmethod
    def put_if_absent(self, key: str, data: Body) -> str:
        """Create ``key`` only if it does not exist; :class:`PreconditionFailedError` otherwise.

        Of any number of racing writers, in any number of processes, exactly one wins.
        """

    @abc.abstractmethod
    def put_if_match(self, key: str, data: Body, etag: str) -> str:
        """Replace ``key`` only if its current etag is ``etag``; :class:`PreconditionFailedError` otherwise.

        A missing key also fails the precondition.
        """

    @abc.abstractmethod
    def delete(self, key: str) -> None:
        """Delete ``key``; deleting a missing key is not an error."""

    @abc.abstractmethod
    def delete_if_match(self, key: str, etag: str) -> None:
        """Delete ``key`` only if its current etag is ``etag``; :class:`PreconditionFailedError` otherwise.

        A missing key also fails the precondition. Check and delete are one
        step for every process: a writer that replaced the object in between
        never loses it. :class:`UnsupportedOperationError` where the server
        cannot do this (AWS S3 can, since 2024).
        """

    @abc.abstractmethod
    def delete_many(self, keys: Iterable[str]) -> int:
        """Delete many keys in batches; return how many were asked for."""

    @abc.abstractmethod
    def copy(self, source_key: str, dest_key: str) -> str:
        """Server-side copy within this store; return the new etag."""

    @abc.abstractmethod
    def leftovers(self, *, older_than: float) -> builtins.list[Leftover]:
        """Unfinished writes in this store's key space idle for over ``older_than`` seconds, oldest first.

        A write still running is never listed on a folder store (its staging
        file is locked); on S3 only its age tells, so ``older_than`` must
        exceed the longest upload.
        """

    @abc.abstractmethod
    def remove_leftover(self, leftover: Leftover) -> None:
        """Remove one leftover; nothing happens if it is gone already (or, on a folder store, back in use)."""

    @abc.abstractmethod
    def check(self) -> None:
        """Raise :class:`StoreUnavailableError` unless the store can be read and listed."""

    def create_if_missing(self) -> None:
        """Make the store ready for its first write, as that write itself would; then :meth:`check` it.

        Commands that write call this before they read, so a store that does
        not exist yet behaves the same for all of them. A folder store creates
        its folder; an S3 store only checks: a missing bucket stays an error
        (creating one is an infrastructure decision, not a write).
        """
        self.check()

    @abc.abstractmethod
    def arrow_filesystem(self) -> tuple[object, str]:
        """A ``pyarrow.fs.FileSystem`` and the base path of this store inside it.

        Lets pyarrow datasets and DuckDB read parquet straight from the store,
        without DuckDB's httpfs extension (unavailable offline).
        """

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"


class PendingUpload(AbstractContextManager["PendingUpload"]):
    """A local file on its way into a store: publish it under a key, or discard it.

    Used as a context manager, whatever was not published is discarded on exit.
    """

    def __init__(self, store: ObjectStore, path: Path) -> None:
        self.store = store
        self.path = path

    def publish(self, key: str) -> str:
        """Make the file visible at ``key`` (replacing any object there); return the etag."""
        return self.store.upload(key, self.path)

    def discard(self) -> None:
        """Drop whatever was transferred; publishing afterwards is a caller's bug."""

    def __exit__(self, *exc_info: object) -> None:
        self.discard()


def iter_chunks(data: Body, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
    """Yield ``data`` in chunks, whether it is bytes or a stream."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        for start in range(0, len(view), chunk_size):
            yield bytes(view[start : start + chunk_size])
        return
    while chunk := data.read(chunk_size):
        yield chunk
