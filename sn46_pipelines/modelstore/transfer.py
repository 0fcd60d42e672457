"""Export versions to a tar.gz and import them back, verifying every hash before anything is visible.

An archive holds the chosen versions' blobs plus *every* record up to the
newest chosen one (records are small), so the chain in the archive verifies
on its own; versions not chosen arrive marked collected. Import checks every
record and blob hash in a local staging folder first, then writes blobs,
collected markers and finally records (oldest first), each record with
create-if-absent, so a target whose chain differs is refused, not forked.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import tempfile
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..objectstore import PreconditionFailedError
from . import audit
from .errors import ImportRejectedError, IntegrityError, VersionCollectedError
from .hashing import HashingReader, copy_and_hash
from .layout import blob_key, collected_key, counter_of_record_key, record_key, sha_of_blob_key, version_id
from .record import VersionRecord, canonical_json
from .store import ModelStore
from .verify import check_chain

ARCHIVE_MANIFEST = "sn46-modelstore-export.json"


@dataclass(frozen=True, slots=True)
class ExportResult:
    output: str
    versions: list[int]
    records: int
    blobs: int
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ImportResult:
    versions: list[int]
    records_written: list[int]
    records_present: list[int]
    blobs_written: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def export_versions(
    store: ModelStore, versions: Iterable[int | str], output: str | os.PathLike[str]
) -> ExportResult:
    """Write ``versions`` (with every record up to the newest of them) to the tar.gz ``output``."""
    counters = sorted({store.resolve(v) for v in versions})
    if not counters:
        raise ImportRejectedError("choose at least one version to export")
    for counter in counters:
        store.get(counter)
        if store.is_collected(counter):
            raise VersionCollectedError(f"cannot export {version_id(counter)}: it was garbage-collected")
    chain = range(counters[-1] + 1)
    raw_records = list(store.fetch_raw(record_key(c) for c in chain))
    records, problem = check_chain((c, data) for c, (_, data) in zip(chain, raw_records))
    if problem:
        raise IntegrityError(
            f"the chain is damaged at {version_id(problem.counter)} ({problem.kind}); not exporting"
        )
    blobs = {e.sha256: e.size for c in counters for e in records[c].manifest.values()}
    output = Path(output)
    partial = output.with_name(f".{output.name}.partial")
    manifest = {
        "format": 1,
        "source": store.url,
        "versions": counters,
        "records": len(records),
        "blobs": blobs,
        "created_at": datetime.now(UTC).isoformat(),
    }
    try:
        with tarfile.open(partial, "w:gz", compresslevel=1) as tar:
            _add_bytes(tar, ARCHIVE_MANIFEST, canonical_json(manifest))
            for key, data in raw_records:
                _add_bytes(tar, key, data)  # type: ignore[arg-type]
            for sha, size in sorted(blobs.items()):
                info = tarfile.TarInfo(blob_key(sha))
                info.size = size
                with store.objects.open(blob_key(sha)) as stream:
                    reader = HashingReader(stream)
                    tar.addfile(info, reader)
                if reader.hexdigest() != sha:
                    raise IntegrityError(f"blob {sha} in {store.url} is corrupt; not exporting")
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    return ExportResult(str(output), counters, len(records), len(blobs), sum(blobs.values()))


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def import_archive(store: ModelStore, archive: str | os.PathLike[str]) -> ImportResult:
    """Verify the archive completely, then make its versions visible in ``store`` (created if missing)."""
    store.objects.create_if_missing()
    with tempfile.TemporaryDirectory(prefix="sn46-import-") as tmp:
        staging = Path(tmp)
        manifest, raw_records, blobs = _unpack(Path(archive), staging)
        records, problem = check_chain(enumerate(raw_records.get(c) for c in range(len(raw_records))))
        if problem or len(records) != manifest.get("records"):
            what = (
                f"{version_id(problem.counter)}: {problem.kind}: {problem.detail}"
                if problem
                else "record count"
            )
            raise ImportRejectedError(
                f"{archive}: the archive's chain does not verify ({what}); nothing imported"
            )
        chosen = [c for c in manifest.get("versions", []) if isinstance(c, int)]
        for counter in chosen:
            if counter >= len(records):
                raise ImportRejectedError(f"{archive}: exported version {counter} has no record")
            for path, entry in records[counter].manifest.items():
                if entry.sha256 not in blobs:
                    raise ImportRejectedError(
                        f"{archive}: the blob of {version_id(counter)}:{path} is missing"
                    )
        start = _first_new_counter(store, records, archive)
        written_blobs = 0
        for sha in {e.sha256 for c in chosen for e in records[c].manifest.values()}:
            if store.holds_good_blob(sha, blobs[sha]):
                continue
            store.objects.upload(blob_key(sha), staging / "blobs" / sha)
            written_blobs += 1
        new = records[start:]
        markers = [r.counter for r in new if r.counter not in chosen]
        for counter in markers:
            store.objects.put(
                collected_key(counter),
                canonical_json(
                    {
                        "version_id": version_id(counter),
                        "collected_at": datetime.now(UTC).isoformat(),
                        "reason": "imported without files",
                    }
                ),
            )
        for record in new:
            try:
                store.objects.put_if_absent(record_key(record.counter), raw_records[record.counter])
            except PreconditionFailedError:
                store.objects.delete_many(collected_key(c) for c in markers if c >= record.counter)
                raise ImportRejectedError(
                    f"{record.version_id} was committed to {store.url} while importing; stopped before it"
                ) from None
        if new:
            store.advance_hint(new[-1])
        result = ImportResult(
            chosen, [r.counter for r in new], [r.counter for r in records[:start]], written_blobs
        )
        newest = {"version_id": new[-1].version_id, "record_hash": new[-1].record_hash} if new else {}
        audit.append_event(store.objects, "import", {"archive": str(archive), **result.to_dict(), **newest})
        return result


def _unpack(archive: Path, staging: Path) -> tuple[dict[str, Any], dict[int, bytes], dict[str, int]]:
    """Stream the archive into ``staging``, hashing each blob; refuse anything unexpected."""
    manifest: dict[str, Any] | None = None
    records: dict[int, bytes] = {}
    blobs: dict[str, int] = {}
    (staging / "blobs").mkdir()
    try:
        tar = tarfile.open(archive, "r|gz")  # noqa: SIM115 - closed by the `with tar:` below
    except (OSError, tarfile.TarError) as exc:
        raise ImportRejectedError(f"{archive}: not a readable tar.gz ({exc})") from exc
    with tar:
        for member in tar:
            if not member.isfile():
                raise ImportRejectedError(f"{archive}: unexpected entry {member.name!r} (not a regular file)")
            stream = tar.extractfile(member)
            if member.name == ARCHIVE_MANIFEST:
                manifest = json.loads(stream.read())  # type: ignore[union-attr]
            elif (counter := counter_of_record_key(member.name)) is not None:
                records[counter] = stream.read()  # type: ignore[union-attr]
            elif (sha := sha_of_blob_key(member.name)) is not None:
                with open(staging / "blobs" / sha, "wb") as out:
                    actual, size = copy_and_hash(stream, out)  # type: ignore[arg-type]
                if actual != sha:
                    raise ImportRejectedError(
                        f"{archive}: blob {sha} is corrupt (hashes to {actual}); nothing imported"
                    )
                blobs[sha] = size
            else:
                raise ImportRejectedError(f"{archive}: unexpected entry {member.name!r}")
    if manifest is None:
        raise ImportRejectedError(f"{archive}: no {ARCHIVE_MANIFEST}; not an sn46 model-store export")
    return manifest, records, blobs


def _first_new_counter(store: ModelStore, records: list[VersionRecord], archive: Any) -> int:
    """How many of the archive's records the target already holds; refuse if the chains differ."""
    head = store.head_counter()
    overlap = min(head, len(records) - 1)
    if overlap >= 0 and store.get(overlap).record_hash != records[overlap].record_hash:
        raise ImportRejectedError(
            f"{archive}: {store.url} holds a different {version_id(overlap)}; the chains diverge, "
            "nothing imported"
        )
    if head >= len(records) - 1:
        return len(records)
    return head + 1
