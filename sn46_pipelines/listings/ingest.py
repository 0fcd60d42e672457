"""Per-hotkey ingest state: which uploads are processed, and where the curated data is.

Each hotkey has ``curated/hotkey={hk}/manifest.json``. A run writes new
curated and quarantine parquet under fresh names first, then replaces the
manifest with one compare-and-swap write: that write is the commit. A crash
before it leaves only unreferenced files (removed by the next run); a second
run racing on the same hotkey loses the swap and changes nothing. Uploads
are only ever read.
"""

from __future__ import annotations

import io
import json
import uuid
from dataclasses import dataclass, field
from typing import Any
from datetime import datetime, timedelta, timezone

import pyarrow as pa
import pyarrow.parquet as pq

from ..objectstore import NotFoundError, ObjectInfo, ObjectStore, PreconditionFailedError
from .curate import CurationResult, curate_hotkey
from .rules import REASONS, Rules
from .discovery import list_hotkey_uploads

CURATED_ROOT = "curated/"
#: Uncommitted curated files younger than this may belong to a run in progress.
UNCOMMITTED_GRACE = timedelta(hours=1)


class ConcurrentIngestError(RuntimeError):
    """Another run committed this hotkey while this one was working; nothing was changed."""


def curated_prefix(hotkey: str) -> str:
    return f"{CURATED_ROOT}hotkey={hotkey}/"


def manifest_key(hotkey: str) -> str:
    return curated_prefix(hotkey) + "manifest.json"


@dataclass
class HotkeyManifest:
    """The committed ingest state of one hotkey."""

    hotkey: str
    processed: dict[str, str] = field(default_factory=dict)
    """upload key -> etag it had when processed (a re-uploaded file is processed again)."""
    listings_key: str | None = None
    quarantine_key: str | None = None
    updated_at: str | None = None
    etag: str | None = None
    """The manifest object's own etag, for the compare-and-swap; not stored."""

    def to_bytes(self) -> bytes:
        body = {
            "hotkey": self.hotkey,
            "processed": self.processed,
            "listings_key": self.listings_key,
            "quarantine_key": self.quarantine_key,
            "updated_at": self.updated_at,
        }
        return json.dumps(body, sort_keys=True, indent=1).encode()


def read_manifest(store: ObjectStore, hotkey: str) -> HotkeyManifest:
    """The hotkey's manifest; an empty one if it was never ingested."""
    key = manifest_key(hotkey)
    try:
        info = store.head(key)
        data = json.loads(store.get(key))
    except NotFoundError:
        return HotkeyManifest(hotkey)
    return HotkeyManifest(
        hotkey=hotkey,
        processed=dict(data["processed"]),
        listings_key=data.get("listings_key"),
        quarantine_key=data.get("quarantine_key"),
        updated_at=data.get("updated_at"),
        etag=info.etag,
    )


def processed_files(store: ObjectStore, hotkey: str) -> set[str]:
    """Upload keys already ingested for ``hotkey`` (the sensor's duplicate guard)."""
    return set(read_manifest(store, hotkey).processed)


def read_table(store: ObjectStore, key: str | None) -> pa.Table | None:
    """A committed parquet table of the curated area, or ``None``."""
    if key is None:
        return None
    return pq.read_table(io.BytesIO(store.get(key)))


@dataclass
class IngestReport:
    """What one ingest run did for one hotkey."""

    hotkey: str
    result: CurationResult | None
    manifest: HotkeyManifest
    new_files: list[ObjectInfo]

    @property
    def listings_rows(self) -> int:
        return 0 if self.result is None else self.result.listings.num_rows

    def metadata(self) -> dict[str, Any]:
        """Flat numbers for run metadata, so the Dagster UI can plot each one over time."""
        if self.result is None:
            stats: dict[str, Any] = {"files_processed": 0, "files_rejected": 0, "rows_in": 0, "rows_accepted": 0,
                                     "rows_rejected": {}, "duplicate_rate": 0.0, "newest_upload": None}
            curated = None
        else:
            stats = self.result.stats()
            curated = self.result.listings.num_rows
        rejected = stats.pop("rows_rejected")
        stats.pop("listings", None)
        return {
            **{k: v for k, v in stats.items() if v is not None},
            "rows_rejected": sum(rejected.values()),
            **{f"rejected_{reason}": rejected.get(reason, 0) for reason in REASONS},
            **({"curated_rows": curated} if curated is not None else {}),
        }


def ingest_hotkey(
    store: ObjectStore, hotkey: str, *, rules: Rules | None = None, now: datetime | None = None
) -> IngestReport:
    """Validate and curate the hotkey's uploads not processed before, and commit the result."""
    manifest = read_manifest(store, hotkey)
    uploads = list_hotkey_uploads(store, hotkey)
    new = [f for f in uploads if manifest.processed.get(f.key) != f.etag]
    _remove_uncommitted(store, hotkey, manifest)
    if not new:
        return IngestReport(hotkey, None, manifest, [])

    existing = read_table(store, manifest.listings_key)
    result = curate_hotkey(store, hotkey, new, existing, rules or Rules(), now)
    old_quarantine = read_table(store, manifest.quarantine_key)
    quarantine = (
        result.quarantine
        if old_quarantine is None
        else pa.concat_tables([old_quarantine, result.quarantine], promote_options="permissive")
    )

    stamp = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    listings_key = curated_prefix(hotkey) + f"listings-{stamp}.parquet"
    quarantine_key = curated_prefix(hotkey) + f"quarantine-{stamp}.parquet"
    _put_table(store, listings_key, result.listings)
    _put_table(store, quarantine_key, quarantine)

    committed = HotkeyManifest(
        hotkey=hotkey,
        processed={**manifest.processed, **{f.key: f.etag for f in new}},
        listings_key=listings_key,
        quarantine_key=quarantine_key,
        updated_at=datetime.now(timezone.utc).isoformat(),
    )
    try:
        if manifest.etag is None:
            committed.etag = store.put_if_absent(manifest_key(hotkey), committed.to_bytes())
        else:
            committed.etag = store.put_if_match(manifest_key(hotkey), committed.to_bytes(), manifest.etag)
    except PreconditionFailedError:
        store.delete_many([listings_key, quarantine_key])
        raise ConcurrentIngestError(
            f"hotkey {hotkey}: another run committed while this one worked; nothing was changed, run it again"
        ) from None
    store.delete_many(k for k in (manifest.listings_key, manifest.quarantine_key) if k)
    return IngestReport(hotkey, result, committed, new)


def _put_table(store: ObjectStore, key: str, table: pa.Table) -> None:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    store.put(key, buffer.getvalue())


def _remove_uncommitted(store: ObjectStore, hotkey: str, manifest: HotkeyManifest) -> None:
    """Delete parquet files a crashed run wrote but never committed.

    Only files older than :data:`UNCOMMITTED_GRACE`: a younger one may belong
    to a run still working on this hotkey, whose commit would then point at
    nothing.
    """
    keep = {manifest_key(hotkey), manifest.listings_key, manifest.quarantine_key}
    cutoff = datetime.now(timezone.utc) - UNCOMMITTED_GRACE
    stale = [o.key for o in store.list(curated_prefix(hotkey)) if o.key not in keep and o.mtime < cutoff]
    if stale:
        store.delete_many(stale)
