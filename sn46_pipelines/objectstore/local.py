"""A folder on disk as an object store (``file:///abs/path``).

The embedded default: no server, same guarantees as S3 between processes.
Every write goes to a temporary file inside the store first and is then moved
into place, so readers see the old object or the new one, never a mix:

* create-if-absent publishes with ``os.link``, which fails if the key exists;
* replace-if-etag-matches, plain puts and deletes take a striped ``flock`` so
  the check and the rename are one step for every process on the machine.

An etag is the file's inode, size and nanosecond mtime (set explicitly on each
write), so any replacement changes it without re-reading the content.

A temporary file is held under a shared ``flock`` for as long as its write is
in use, so the staging files of a killed process (the kernel drops its locks)
can be told from those of a write still running, whatever their age:
:meth:`LocalObjectStore.leftovers` lists only unlocked ones.

A write returns once it would survive a power cut, as a PUT to S3 does: the
temporary file is fsynced before it is moved into place and the folder after.
That order is what makes a model-store commit durable: its blobs are on disk
before the record that names them is written.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import fcntl
import hashlib
import os
import shutil
import stat
import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from .base import (
    STAGING_FILE,
    Body,
    Leftover,
    MissingStoreError,
    NotFoundError,
    ObjectInfo,
    ObjectStore,
    ObjectStoreError,
    PendingUpload,
    PreconditionFailedError,
    RequestCounter,
    StoreUnavailableError,
    iter_chunks,
)

#: Write failures that are the store's (its disk), not the caller's: the write fails, nothing is published.
_DISK_FAILURES = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS})

#: Folder inside the store root that holds temporary files and lock stripes; never listed.
INTERNAL_DIR = ".sn46-objectstore"
LOCK_STRIPES = 64


class LocalObjectStore(ObjectStore):
    """Objects as files under ``root``; keys are relative paths."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        if not self.root.is_absolute():
            raise ObjectStoreError(f"file://{root}: a folder store needs an absolute path")
        self.url = f"file://{self.root}"
        self.requests = RequestCounter()

    # -- paths and metadata ----------------------------------------------------
    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ObjectStoreError(f"{self.url}: invalid key {key!r}")
        if parts[0] == INTERNAL_DIR:
            raise ObjectStoreError(f"{self.url}: key {key!r} is reserved")
        return self.root.joinpath(*parts)

    def _require_root(self) -> None:
        if not self.root.is_dir():
            if self.root.exists():
                raise StoreUnavailableError(f"{self.url}: is not a folder")
            raise MissingStoreError(f"{self.url}: folder does not exist")
        if not os.access(self.root, os.R_OK | os.X_OK):
            raise StoreUnavailableError(f"{self.url}: folder is not readable (permission denied)")

    def _info(self, key: str, st: os.stat_result) -> ObjectInfo:
        return ObjectInfo(
            key=key,
            size=st.st_size,
            etag=f"{st.st_ino:x}-{st.st_mtime_ns:x}-{st.st_size:x}",
            mtime=datetime.fromtimestamp(st.st_mtime_ns / 1e9, tz=UTC),
        )

    def _stat(self, key: str) -> os.stat_result:
        path = self._path(key)
        try:
            st = path.stat()
        except (FileNotFoundError, NotADirectoryError):
            self._require_root()
            raise NotFoundError(self.url, key) from None
        except PermissionError as exc:
            raise StoreUnavailableError(f"{self.url}: permission denied reading {key!r}") from exc
        if not stat.S_ISREG(st.st_mode):
            raise NotFoundError(self.url, key)
        return st

    # -- reads ----------------------------------------------------------------
    def head(self, key: str) -> ObjectInfo:
        self.requests.add("head")
        return self._info(key, self._stat(key))

    def get(self, key: str) -> bytes:
        with self.open(key) as f:
            return f.read()

    def get_range(self, key: str, start: int, end: int | None = None) -> bytes:
        if start < 0 or (end is not None and end < start):
            raise ValueError(f"invalid byte range {start}..{end}")
        with self.open(key) as f:
            f.seek(start)
            return f.read() if end is None else f.read(end - start)

    @contextlib.contextmanager
    def open(self, key: str) -> Iterator[BinaryIO]:
        self.requests.add("get")
        path = self._path(key)
        try:
            f = open(path, "rb")  # noqa: SIM115 - handed to the caller
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            self._require_root()
            raise NotFoundError(self.url, key) from None
        except PermissionError as exc:
            raise StoreUnavailableError(f"{self.url}: permission denied reading {key!r}") from exc
        with f:
            yield f

    def download(self, key: str, path: str | os.PathLike[str]) -> ObjectInfo:
        dest = Path(path)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex}.part")
        try:
            with self.open(key) as src, open(tmp, "wb") as out:
                shutil.copyfileobj(src, out, 1024 * 1024)
                info = self._info(key, os.fstat(src.fileno()))
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return info

    def list(
        self, prefix: str = "", *, start_after: str | None = None, delimiter: str | None = None
    ) -> Iterator[ObjectInfo]:
        _check_delimiter(delimiter)
        self.requests.add("list")
        for key, st in self._walk(prefix, start_after, recursive=delimiter is None):
            if st is not None:
                yield self._info(key, st)

    def list_prefixes(
        self, prefix: str = "", *, delimiter: str = "/", start_after: str | None = None
    ) -> Iterator[str]:
        _check_delimiter(delimiter)
        self.requests.add("list")
        for key, st in self._walk(prefix, start_after, recursive=False):
            if st is None:
                yield key

    def _walk(
        self, prefix: str, start_after: str | None, *, recursive: bool
    ) -> Iterator[tuple[str, os.stat_result | None]]:
        """Yield ``(key, stat)`` for files and ``(prefix/, None)`` for folders, in S3 key order."""
        self._require_root()
        dir_part, _, name_prefix = prefix.rpartition("/")
        base = self.root.joinpath(*dir_part.split("/")) if dir_part else self.root
        key_base = f"{dir_part}/" if dir_part else ""
        yield from self._walk_dir(base, key_base, name_prefix, start_after or "", recursive)

    def _walk_dir(
        self, folder: Path, key_base: str, name_prefix: str, start_after: str, recursive: bool
    ) -> Iterator[tuple[str, os.stat_result | None]]:
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            return
        except PermissionError as exc:
            raise StoreUnavailableError(f"{self.url}: permission denied listing {folder}") from exc
        # A folder sorts as its name plus "/", which is exactly where its keys fall in S3 order.
        ordered = sorted(
            (e.name + "/" if e.is_dir(follow_symlinks=False) else e.name, e)
            for e in entries
            if e.name.startswith(name_prefix) and not (not key_base and e.name == INTERNAL_DIR)
        )
        for sort_name, entry in ordered:
            key = key_base + sort_name
            if sort_name.endswith("/"):
                # Every key inside sorts before start_after: skip the whole folder.
                if key <= start_after and not start_after.startswith(key):
                    continue
                if recursive:
                    yield from self._walk_dir(Path(entry.path), key, "", start_after, True)
                elif key > start_after:
                    yield key, None
            elif key > start_after and not entry.name.startswith("."):
                try:
                    yield key, entry.stat(follow_symlinks=False)
                except FileNotFoundError:  # deleted while listing
                    continue

    # -- writes ---------------------------------------------------------------
    @property
    def _tmp_dir(self) -> Path:
        return self.root / INTERNAL_DIR / "tmp"

    @contextlib.contextmanager
    def _staged(self, data: Body | Path) -> Iterator[Path]:
        """Write ``data`` to a temporary file inside the store, on disk; remove it unless published.

        The file is locked (shared) until the context ends, which marks it as in use.
        """
        try:
            self._tmp_dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(f"{self.url}: cannot create the folder: {exc.strerror}") from exc
        tmp = self._tmp_dir / uuid.uuid4().hex
        try:
            out = open(tmp, "xb")  # noqa: SIM115 - held open (and locked) while the write is in use
        except OSError as exc:
            if exc.errno in _DISK_FAILURES:
                raise StoreUnavailableError(f"{self.url}: cannot write: {exc.strerror}") from exc
            raise
        fcntl.flock(out.fileno(), fcntl.LOCK_SH)
        try:
            try:
                if isinstance(data, Path):
                    shutil.copyfile(data, tmp)  # sendfile where it can; the same inode, so still locked
                    _fsync(tmp)
                else:
                    out.writelines(iter_chunks(data))
                    out.flush()
                    os.fsync(out.fileno())
            except OSError as exc:
                if exc.errno in _DISK_FAILURES:
                    raise StoreUnavailableError(f"{self.url}: cannot write: {exc.strerror}") from exc
                raise
            now = time.time_ns()
            os.utime(tmp, ns=(now, now))
            yield tmp
        finally:
            tmp.unlink(missing_ok=True)
            out.close()  # releases the lock

    @contextlib.contextmanager
    def _locked(self, key: str) -> Iterator[None]:
        """Hold the lock stripe of ``key`` (shared by every process using this folder)."""
        stripe = int.from_bytes(hashlib.blake2b(key.encode(), digest_size=2).digest()) % LOCK_STRIPES
        lock_dir = self.root / INTERNAL_DIR / "locks"
        lock_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_dir / f"{stripe:02d}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _publish(self, tmp: Path, key: str, *, expect: str | None = None, absent: bool = False) -> str:
        dest = self._path(key)
        for _ in range(5):  # a concurrent delete may remove the parent folder in between
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                if absent:
                    os.link(tmp, dest)
                else:
                    with self._locked(key):
                        if expect is not None:
                            current = self._current_etag(key)
                            if current != expect:
                                raise PreconditionFailedError(
                                    self.url, key, f"etag is {current or 'absent'}, expected {expect}"
                                )
                        os.replace(tmp, dest)
            except FileExistsError:
                raise PreconditionFailedError(self.url, key, "object already exists") from None
            except FileNotFoundError:
                continue
            except (IsADirectoryError, NotADirectoryError) as exc:
                raise ObjectStoreError(f"{self.url}: key {key!r} clashes with a folder") from exc
            except PermissionError as exc:
                raise StoreUnavailableError(f"{self.url}: permission denied writing {key!r}") from exc
            _fsync(dest.parent)  # the new name itself
            return self._info(key, dest.stat()).etag
        raise ObjectStoreError(f"{self.url}: could not write {key!r}: its folder kept disappearing")

    def _current_etag(self, key: str) -> str | None:
        try:
            return self._info(key, self._stat(key)).etag
        except NotFoundError:
            return None

    def put(self, key: str, data: Body) -> str:
        self.requests.add("put")
        self._path(key)
        with self._staged(data) as tmp:
            return self._publish(tmp, key)

    def upload(self, key: str, path: str | os.PathLike[str]) -> str:
        self.requests.add("put")
        self._path(key)
        with self._staged(Path(path)) as tmp:
            return self._publish(tmp, key)

    def begin_upload(self, path: str | os.PathLike[str]) -> PendingUpload:
        """Copy the file into the store's temporary folder now; :meth:`PendingUpload.publish` renames it."""
        return _StagedCopy(self, Path(path))

    def put_if_absent(self, key: str, data: Body) -> str:
        self.requests.add("put")
        self._path(key)
        with self._staged(data) as tmp:
            return self._publish(tmp, key, absent=True)

    def put_if_match(self, key: str, data: Body, etag: str) -> str:
        self.requests.add("put")
        self._path(key)
        with self._staged(data) as tmp:
            return self._publish(tmp, key, expect=etag)

    def delete(self, key: str) -> None:
        self._delete(key, None)

    def delete_if_match(self, key: str, etag: str) -> None:
        self._delete(key, etag)

    def _delete(self, key: str, expect: str | None) -> None:
        self.requests.add("delete")
        path = self._path(key)
        with self._locked(key):
            if expect is not None and (current := self._current_etag(key)) != expect:
                detail = f"etag is {current or 'absent'}, expected {expect}"
                raise PreconditionFailedError(self.url, key, detail)
            try:
                path.unlink()
            except (FileNotFoundError, NotADirectoryError):
                return
            except PermissionError as exc:
                raise StoreUnavailableError(f"{self.url}: permission denied deleting {key!r}") from exc
        self._prune_empty_parents(path.parent)

    def _prune_empty_parents(self, folder: Path) -> None:
        """Remove folders left empty, so listings match S3 where folders do not exist."""
        while folder != self.root and self.root in folder.parents:
            try:
                folder.rmdir()
            except OSError as exc:
                if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOENT):
                    return
                raise
            folder = folder.parent

    def delete_many(self, keys: Iterable[str]) -> int:
        count = 0
        for key in keys:
            self.delete(key)
            count += 1
        return count

    def copy(self, source_key: str, dest_key: str) -> str:
        self.requests.add("copy")
        source = self._path(source_key)
        self._path(dest_key)
        try:
            with self._staged(source) as tmp:
                return self._publish(tmp, dest_key)
        except (FileNotFoundError, IsADirectoryError):
            self._require_root()
            raise NotFoundError(self.url, source_key) from None

    def leftovers(self, *, older_than: float) -> builtins.list[Leftover]:
        self.requests.add("list")
        self._require_root()
        cutoff = time.time() - older_than
        found = []
        try:
            entries = list(os.scandir(self._tmp_dir))
        except FileNotFoundError:
            return []
        for entry in entries:
            try:
                st = entry.stat(follow_symlinks=False)
            except FileNotFoundError:  # published or discarded meanwhile
                continue
            if not stat.S_ISREG(st.st_mode) or st.st_mtime >= cutoff:
                continue
            with self._unused(Path(entry.path)) as unused:
                if unused:
                    started = datetime.fromtimestamp(st.st_mtime, tz=UTC)
                    found.append(Leftover(STAGING_FILE, entry.name, st.st_size, started))
        return sorted(found, key=lambda leftover: leftover.started)

    @contextlib.contextmanager
    def _unused(self, path: Path) -> Iterator[bool]:
        """Lock a staging file exclusively unless a live write holds it; yield whether that worked."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            yield False
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)

    def remove_leftover(self, leftover: Leftover) -> None:
        if leftover.kind != STAGING_FILE or "/" in leftover.key or leftover.key.startswith("."):
            raise ObjectStoreError(f"{self.url}: {leftover.kind} {leftover.key!r} is not a staging file here")
        self.requests.add("delete")
        path = self._tmp_dir / leftover.key
        with self._unused(path) as unused:
            if unused:
                path.unlink(missing_ok=True)

    def check(self) -> None:
        self.requests.add("check")
        self._require_root()

    def create_if_missing(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreUnavailableError(f"{self.url}: cannot create the folder: {exc.strerror}") from exc
        self.check()

    def arrow_filesystem(self) -> tuple[object, str]:
        from pyarrow import fs

        return fs.LocalFileSystem(), str(self.root)


class _StagedCopy(PendingUpload):
    """A copy already inside the store: publishing is a rename, discarding a delete."""

    def __init__(self, store: LocalObjectStore, path: Path) -> None:
        super().__init__(store, path)
        self._local = store
        self._stage = contextlib.ExitStack()
        self._tmp: Path | None = self._stage.enter_context(store._staged(path))

    def publish(self, key: str) -> str:
        if self._tmp is None:
            raise ObjectStoreError(f"{self.path}: this staged copy was already published or discarded")
        self._local.requests.add("put")
        self._local._path(key)
        try:
            return self._local._publish(self._tmp, key)
        finally:
            self.discard()

    def discard(self) -> None:
        self._tmp = None
        self._stage.close()


def _fsync(path: Path) -> None:
    """Flush a file's data, or a folder's entries, to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError as exc:
        # Some filesystems (FUSE, a few network ones) cannot sync a folder; the file itself was.
        if not (exc.errno == errno.EINVAL and path.is_dir()):
            raise
    finally:
        os.close(fd)


def _check_delimiter(delimiter: str | None) -> None:
    if delimiter not in (None, "/"):
        raise ValueError(f"the folder store only supports '/' as a delimiter, not {delimiter!r}")
