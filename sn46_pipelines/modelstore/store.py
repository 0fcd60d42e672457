"""The model store: commit checkpoints, find the head, read and check out versions.

Layout and rules are in docs/modelstore-format.md. The one write that decides
a commit is the create-if-absent of ``records/v{N+1}.json``: of any number of
racing writers exactly one creates it, so the chain never forks. Everything
else (blobs before it, the ``HEAD`` hint after it) is either content-addressed
or only a hint, so a crash at any step leaves a valid chain.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..objectstore import NotFoundError, ObjectInfo, ObjectStore, PreconditionFailedError, open_store
from ..objectstore.base import PendingUpload
from . import audit, lease, segments
from .errors import (
    ConflictError,
    IntegrityError,
    InvalidRecordError,
    ModelStoreError,
    VersionCollectedError,
    VersionNotFoundError,
)
from .hashing import copy_and_hash, hash_file, hash_stream
from .layout import (
    COLLECTED,
    HEAD_HINT,
    INFLIGHT,
    RECORDS,
    blob_key,
    collected_key,
    counter_of_collected_key,
    counter_of_record_key,
    record_key,
)
from .pins import resolve_pin
from .record import (
    ManifestEntry,
    VersionRecord,
    build_record,
    canonical_json,
    check_file_path,
    parse_record,
    parse_version,
    whoami,
)

#: Parallel requests for bulk record reads and blob uploads.
IO_WORKERS = 16


@dataclass(frozen=True, slots=True)
class StagedFile:
    """A local file about to be committed: hashed, and on its way into the store."""

    path: Path
    sha256: str
    size: int
    pending: PendingUpload


class ModelStore:
    """A hash-chained store of model checkpoints on any :class:`ObjectStore`."""

    def __init__(self, objects: ObjectStore, *, gc_wait_timeout: float = 600.0) -> None:
        self.objects = objects
        self.gc_wait_timeout = gc_wait_timeout

    @classmethod
    def open(cls, url: str, *, endpoint_url: str | None = None, region: str | None = None) -> ModelStore:
        """Open the model store at ``file:///path`` or ``s3://bucket/prefix``."""
        return cls(open_store(url, endpoint_url=endpoint_url, region=region))

    @property
    def url(self) -> str:
        return self.objects.url

    def __repr__(self) -> str:
        return f"ModelStore({self.url!r})"

    # -- reading the chain ---------------------------------------------------
    def get(self, version: int | str) -> VersionRecord:
        """The record of one version (``42``, ``"v0000000042"``, ``"head"``, ``"pin:prod"``): one GET."""
        counter = self.resolve(version)
        try:
            data = self.objects.get(record_key(counter))
        except NotFoundError:
            raise VersionNotFoundError(f"{self.url}: version v{counter:010d} does not exist") from None
        record = parse_record(data, where=f"record v{counter:010d}")
        if record.counter != counter:
            raise InvalidRecordError(f"record at v{counter:010d} claims counter {record.counter}")
        return record

    def resolve(self, version: int | str) -> int:
        """The counter a version name stands for; ``head`` and ``pin:NAME`` are looked up."""
        if isinstance(version, str) and version.strip().lower() == "head":
            counter = self.head_counter()
            if counter < 0:
                raise VersionNotFoundError(f"{self.url}: the store has no versions yet")
            return counter
        if isinstance(version, str) and version.startswith("pin:"):
            return resolve_pin(self, version[4:])
        return parse_version(version)

    def head(self) -> VersionRecord | None:
        """The newest record, or ``None`` for an empty store (an unreadable store raises)."""
        counter = self.head_counter()
        return None if counter < 0 else self.get(counter)

    def head_counter(self) -> int:
        """The newest counter (-1 when empty) in a few requests, however long the chain.

        Reads the ``HEAD`` hint, then probes forward with HEAD requests,
        doubling the stride, and bisects: a hint that lags by L versions costs
        O(log L) requests; an up-to-date hint costs three.
        """
        hint = self.head_hint()
        if hint is not None and not self.objects.exists(record_key(hint["counter"])):
            raise ModelStoreError(
                f"{self.url}: the HEAD hint names v{hint['counter']:010d} but that record is missing; "
                "the chain is damaged (run `sn46 store verify`)"
            )
        return self._probe_forward(hint["counter"] if hint else -1)

    def _probe_forward(self, known: int) -> int:
        """The last counter of the contiguous run of records starting after ``known`` (which exists)."""
        step = 1
        while self.objects.exists(record_key(known + step)):
            known += step
            step *= 2
        low, high = known, known + step  # low exists (or is -1), high does not
        while high - low > 1:
            mid = (low + high) // 2
            if self.objects.exists(record_key(mid)):
                low = mid
            else:
                high = mid
        return low

    def head_hint(self) -> dict[str, Any] | None:
        """The ``HEAD`` hint (``counter``, ``version_id``, ``record_hash``); ``None`` if unreadable."""
        try:
            raw = json.loads(self.objects.get(HEAD_HINT))
        except NotFoundError:
            return None
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # a damaged hint is only a slower lookup, never a wrong one
        valid = isinstance(raw, dict) and isinstance(raw.get("counter"), int) and raw["counter"] >= 0
        return raw if valid else None

    def advance_hint(self, record: VersionRecord) -> None:
        """Move the ``HEAD`` hint forward to ``record`` unless it is already past it (CAS, retried)."""
        body = canonical_json(
            {"counter": record.counter, "version_id": record.version_id, "record_hash": record.record_hash}
        )
        for _ in range(8):
            try:
                etag = self.objects.head(HEAD_HINT).etag
            except NotFoundError:
                try:
                    self.objects.put_if_absent(HEAD_HINT, body)
                    return
                except PreconditionFailedError:
                    continue
            try:
                current = json.loads(self.objects.get(HEAD_HINT)).get("counter", -1)
            except (NotFoundError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
                current = -1
            if isinstance(current, int) and current >= record.counter:
                return
            try:
                self.objects.put_if_match(HEAD_HINT, body, etag)
                return
            except PreconditionFailedError:
                continue
        # Losing the hint race eight times only means a reader probes a little further.

    def record_infos(self) -> dict[int, ObjectInfo]:
        """Listing of every stored record by counter, ascending (one LIST page per 1,000)."""
        return {
            c: info
            for info in self.objects.list(RECORDS)
            if (c := counter_of_record_key(info.key)) is not None
        }

    def record_counters(self) -> list[int]:
        """Counters of every stored record, ascending."""
        return list(self.record_infos())

    def collected_counters(self) -> set[int]:
        """Counters whose files GC has deleted (their records stay)."""
        return {
            c
            for info in self.objects.list(COLLECTED)
            if (c := counter_of_collected_key(info.key)) is not None
        }

    def is_collected(self, counter: int) -> bool:
        return self.objects.exists(collected_key(counter))

    def fetch_raw(self, keys: Iterable[str]) -> Iterator[tuple[str, bytes | None]]:
        """GET many small objects in parallel, in order; ``None`` for keys that vanished."""

        def fetch(key: str) -> tuple[str, bytes | None]:
            try:
                return key, self.objects.get(key)
            except NotFoundError:
                return key, None

        with ThreadPoolExecutor(IO_WORKERS) as pool:
            yield from pool.map(fetch, keys)

    def records(self, counters: Iterable[int]) -> Iterator[VersionRecord]:
        """Records of ``counters``, fetched in parallel, in the order given."""
        for key, data in self.fetch_raw(record_key(c) for c in counters):
            if data is None:
                raise VersionNotFoundError(f"{self.url}: {key} vanished while reading")
            yield parse_record(data, where=key)

    def list_versions(self) -> list[VersionRecord]:
        """Every record, oldest first."""
        return list(self.records(self.record_counters()))

    # -- checkout --------------------------------------------------------------
    def checkout(self, version: int | str, dest: str | os.PathLike[str]) -> VersionRecord:
        """Write the version's files under ``dest``, each verified against its sha256 first.

        Files are staged in a hidden folder inside ``dest`` and moved into
        place only once every hash matched, so a bad blob writes nothing.
        """
        record = self.get(version)
        if self.is_collected(record.counter):
            raise VersionCollectedError(
                f"{record.version_id} was garbage-collected: its record remains but its files are gone"
            )
        dest = Path(dest)
        dest.mkdir(parents=True, exist_ok=True)
        staging = dest / f".sn46-checkout-{uuid.uuid4().hex}"
        staging.mkdir()
        try:
            for path, entry in record.manifest.items():
                self.fetch_blob(entry, staging / path)
            for path in record.manifest:
                target = dest / path
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / path, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return record

    def fetch_blob(self, entry: ManifestEntry, target: Path) -> None:
        """Stream one blob to ``target``, hashing as it goes; :class:`IntegrityError` on mismatch."""
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.objects.open(blob_key(entry.sha256)) as src, open(target, "wb") as out:
                sha, size = copy_and_hash(src, out)
        except NotFoundError:
            target.unlink(missing_ok=True)
            raise IntegrityError(f"{self.url}: blob {entry.sha256} is missing") from None
        if sha != entry.sha256 or size != entry.size:
            target.unlink(missing_ok=True)
            raise IntegrityError(
                f"{self.url}: blob {entry.sha256} is corrupt (read {size} bytes hashing to {sha})"
            )

    # -- commit ----------------------------------------------------------------
    def commit(
        self,
        path: str | os.PathLike[str],
        *,
        message: str = "",
        metadata: dict[str, Any] | None = None,
        retries: int = 0,
    ) -> VersionRecord:
        """Commit a file or a folder of files as the next version; return its record.

        Blobs go up first (skipping ones already stored intact), then the record is
        created with one conditional write. If another writer took the
        counter, :class:`ConflictError` names it; with ``retries`` the head is
        re-read and the same snapshot committed on top, up to that many times.
        """
        started = time.monotonic()
        to_commit = files_to_commit(Path(path))  # bad input is refused before anything is created
        self.objects.create_if_missing()
        with contextlib.ExitStack() as staging:
            files = {
                name: staging.enter_context(stage_file(self.objects, file))
                for name, file in to_commit.items()
            }
            intent = f"{INFLIGHT}{uuid.uuid4().hex}.json"
            self.objects.put_if_absent(
                intent, canonical_json({"blobs": sorted({f.sha256 for f in files.values()}), "by": whoami()})
            )
            try:
                lease.wait_until_free(self.objects, timeout=self.gc_wait_timeout)
                self._upload_blobs(files.values())
                manifest = {name: ManifestEntry(f.sha256, f.size) for name, f in files.items()}
                record = self._append_record(manifest, message=message, metadata=metadata, retries=retries)
            finally:
                self.objects.delete(intent)
        self.advance_hint(record)
        latency = time.monotonic() - started
        if (record.counter + 1) % segments.SEGMENT_SIZE == 0:
            segments.seal_segment(self, record.counter + 1 - segments.SEGMENT_SIZE)
        audit.append_event(
            self.objects,
            "commit",
            {
                "version_id": record.version_id,
                "record_hash": record.record_hash,
                "bytes": record.size,
                "latency_s": round(latency, 6),
                "message": message,
            },
        )
        return record

    def holds_good_blob(self, sha256: str, size: int) -> bool:
        """True when the blob stored under ``sha256`` has ``size`` bytes that hash to its name.

        Deduplication asks this before trusting a blob it would not upload: a
        blob of the right size may still hold rotted or tampered bytes, and a
        commit naming it would be acknowledged and then fail every checkout.
        It costs one HEAD, plus a read of the blob when the size matches.
        """
        key = blob_key(sha256)
        try:
            if self.objects.head(key).size != size:
                return False
            with self.objects.open(key) as stream:
                return hash_stream(stream) == (sha256, size)
        except NotFoundError:
            return False

    def _upload_blobs(self, files: Iterable[StagedFile]) -> None:
        """Make every blob of the commit known good: uploaded now, or already stored and re-hashed."""
        unique = {f.sha256: f for f in files}

        def upload(f: StagedFile) -> None:
            if self.holds_good_blob(f.sha256, f.size):
                return
            f.pending.publish(blob_key(f.sha256))

        with ThreadPoolExecutor(min(4, max(1, len(unique)))) as pool:
            list(pool.map(upload, unique.values()))

    def _append_record(
        self,
        manifest: dict[str, ManifestEntry],
        *,
        message: str,
        metadata: dict[str, Any] | None,
        retries: int,
    ) -> VersionRecord:
        if retries < 0:
            raise InvalidRecordError("retries must be 0 or more")
        for attempt in range(retries + 1):
            parent = self.head()
            record = build_record(
                parent.counter + 1 if parent else 0, parent, manifest, message=message, metadata=metadata
            )
            try:
                self.objects.put_if_absent(record_key(record.counter), record.to_bytes())
                return record
            except PreconditionFailedError:
                if attempt == retries:
                    raise ConflictError(record.counter, self._winner(record.counter)) from None
                time.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")

    def _winner(self, counter: int) -> dict[str, Any] | None:
        try:
            return self.get(counter).to_dict()
        except ModelStoreError:
            return None


def files_to_commit(path: Path) -> dict[str, Path]:
    """The file at ``path`` (named by its basename) or every file under the folder ``path``, by name."""
    if path.is_file():
        return {check_file_path(path.name): path}
    if not path.is_dir():
        raise InvalidRecordError(f"{path}: no such file or folder to commit")
    files = {
        check_file_path(file.relative_to(path).as_posix()): file
        for file in sorted(p for p in path.rglob("*") if p.is_file())
    }
    if not files:
        raise InvalidRecordError(f"{path}: the folder holds no files to commit")
    return files


@contextlib.contextmanager
def stage_file(objects: ObjectStore, path: Path) -> Iterator[StagedFile]:
    """Hash ``path`` while the store starts taking it in; discard the transfer unless it is published.

    On a folder store the copy into the store runs on a second thread beside
    the hash (both drop the GIL), so a commit costs about one pass over the
    file instead of two. A file that changes meanwhile would be stored under
    the wrong hash, so its size and mtime are compared before and after.
    """
    before = path.stat()
    with ThreadPoolExecutor(2) as pool:
        transfer = pool.submit(objects.begin_upload, path)
        hashed = pool.submit(hash_file, path)
    with transfer.result() as pending:
        sha, size = hashed.result()
        after = path.stat()
        if (after.st_size, after.st_mtime_ns) != (
            before.st_size,
            before.st_mtime_ns,
        ) or size != after.st_size:
            raise InvalidRecordError(f"{path} changed while it was being committed; commit it again")
        yield StagedFile(path, sha, size, pending)
