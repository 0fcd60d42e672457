"""Per-hotkey ingest state: which uploads are processed, and where the curated data is.

Each hotkey has ``curated/hotkey={hk}/manifest.json``. A run writes new
curated and quarantine parquet under fresh names first, then replaces the
manifest with one compare-and-swap write: that write is the commit. A crash
before it leaves only unreferenced files (removed by the next run); a second
run racing on the same hotkey loses the swap and changes nothing. Uploads
are only ever read.

What a hotkey's folder holds stays one freshness window (``Rules.freshness``)
deep however long the miner uploads: the curated set is its current listings,
the quarantine file the rejections of the window's runs, and the manifest's
``runs`` what each of those runs read. The manifest's record of the uploads it
has read is as bounded: it names only the uploads of the last
:data:`SETTLE_MARGIN`, and one time, ``settled_before``, stands for all
earlier ones (see :meth:`HotkeyManifest.has_read`). Rejections older than the window move
to ``audit/hotkey={hk}/``, which nothing but a person reads; the uploads
themselves stay in ``data/``. All these keys are named in :mod:`.layout`.
"""

from __future__ import annotations

import io
import json
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ..errors import SN46Error
from ..objectstore import NotFoundError, ObjectInfo, ObjectStore, PreconditionFailedError
from .curate import CurationResult, curate_hotkey
from .discovery import list_hotkey_uploads

# Also imported from here: CURATED_ROOT by infra.bucket, the key functions by tests and benchmarks.
from .layout import (
    CURATED_ROOT,  # noqa: F401
    audit_prefix,
    curated_prefix,
    manifest_key,
)
from .rules import REASONS, Rules
from .schema import QUARANTINE_SCHEMA, TIMESTAMP

#: Uncommitted curated files younger than this may belong to a run in progress.
UNCOMMITTED_GRACE = timedelta(hours=1)
#: How far before a committed run's listing its manifest still names each upload it read. Uploads
#: last modified earlier are covered by ``settled_before`` alone. A day allows for the store's clock
#: running behind this machine's, S3's one-second ``LastModified`` and an upload listed later than
#: it was dated.
SETTLE_MARGIN = timedelta(days=1)


class ManifestError(SN46Error, ValueError):
    """A hotkey's ``manifest.json`` cannot be read; ingest changes nothing for that hotkey until it is
    repaired or deleted (deleting it has the next run curate the hotkey's folder again)."""


class ConcurrentIngestError(SN46Error):
    """Another run committed this hotkey while this one was working; nothing was changed."""


@dataclass(frozen=True, slots=True)
class IngestRun:
    """What one committed run read: the submissions scores are computed over, for one window."""

    #: The run's reference time (``now``), timezone-aware.
    at: datetime
    #: job_id -> rows read from that job's readable new files.
    rows_in: dict[str, int]
    #: SHA-256 -> key of each file read, so the same bytes under a new name are read once.
    digests: dict[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "rows_in": self.rows_in, "digests": self.digests}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> IngestRun:
        return cls(datetime.fromisoformat(data["at"]), dict(data["rows_in"]), dict(data.get("digests", {})))


@dataclass
class HotkeyManifest:
    """The committed ingest state of one hotkey."""

    hotkey: str
    processed: dict[str, str] = field(default_factory=dict)
    """upload key -> etag it had when processed (a re-uploaded file is processed again), for the
    uploads last modified at or after ``settled_before``."""
    settled_before: datetime | None = None
    """Every upload last modified before this was read by a committed run; None in a new manifest
    (or one written before this was recorded), where ``processed`` names every upload read."""
    listings_key: str | None = None
    quarantine_key: str | None = None
    updated_at: str | None = None
    runs: list[IngestRun] | None = None
    """The committed runs of the last freshness window, oldest first; None in a manifest written
    before runs were recorded (its submissions are then estimated, see ``sources``)."""
    etag: str | None = None
    """The manifest object's own etag, for the compare-and-swap; not stored."""

    def to_bytes(self) -> bytes:
        body = {
            "hotkey": self.hotkey,
            "processed": self.processed,
            "listings_key": self.listings_key,
            "quarantine_key": self.quarantine_key,
            "updated_at": self.updated_at,
            **({"settled_before": self.settled_before.isoformat()} if self.settled_before else {}),
            **({"runs": [run.to_json() for run in self.runs]} if self.runs is not None else {}),
        }
        # Compact: json's C encoder writes no indented output, and every run writes the manifest.
        return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()

    def has_read(self, upload: ObjectInfo) -> bool:
        """Whether a committed run read ``upload`` as it is now (same key, same etag).

        Uploads older than ``settled_before`` were all read by the run that set
        it, so the manifest stays as large as :data:`SETTLE_MARGIN`'s uploads
        instead of growing with every file the miner ever sent. A file uploaded
        again under the same key gets a new modification time, and is read again.
        """
        if self.settled_before is not None and upload.mtime < self.settled_before:
            return True
        return self.processed.get(upload.key) == upload.etag

    def digests(self) -> dict[str, str]:
        """SHA-256 -> key of every file the window's runs read."""
        return {digest: key for run in self.runs or [] for digest, key in run.digests.items()}


def read_manifest(store: ObjectStore, hotkey: str) -> HotkeyManifest:
    """The hotkey's manifest; an empty one if it was never ingested."""
    key = manifest_key(hotkey)
    try:
        info = store.head(key)
        body = store.get(key)
    except NotFoundError:
        return HotkeyManifest(hotkey)
    try:
        data = json.loads(body)
        settled = datetime.fromisoformat(data["settled_before"]) if data.get("settled_before") else None
        if settled is not None and settled.tzinfo is None:
            raise ValueError(f"settled_before {data['settled_before']!r} has no timezone")
        return HotkeyManifest(
            hotkey=hotkey,
            processed={str(k): str(v) for k, v in data["processed"].items()},
            listings_key=data.get("listings_key"),
            quarantine_key=data.get("quarantine_key"),
            updated_at=data.get("updated_at"),
            settled_before=settled,
            runs=[IngestRun.from_json(run) for run in data["runs"]] if "runs" in data else None,
            etag=info.etag,
        )
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        detail = f"{type(exc).__name__}: {exc}" if not isinstance(exc, KeyError) else f"no {exc} field"
        raise ManifestError(
            f"{store.url}/{key}: not a readable manifest ({detail}); repair it, or delete it to have "
            "the next run curate the hotkey's uploads again"
        ) from None


def read_table(store: ObjectStore, key: str | None) -> pa.Table | None:
    """A committed parquet table of the curated area, or ``None``.

    Read through ``ParquetFile``, not ``pq.read_table``: the latter builds a
    dataset, whose first use in a process costs more than reading a miner's
    whole current set, and every ingest run is a fresh process.
    """
    if key is None:
        return None
    return pq.ParquetFile(pa.BufferReader(store.get(key))).read()


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
            stats: dict[str, Any] = {
                "files_processed": 0,
                "files_rejected": 0,
                "files_identical": 0,
                "rows_in": 0,
                "rows_accepted": 0,
                "rows_rejected": {},
                "duplicate_rate": 0.0,
                "rows_expired": 0,
                "newest_upload": None,
            }
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
    """Validate and curate the hotkey's uploads not processed before, and commit the result.

    ``now`` (timezone-aware, default the current time) is the run's reference
    time: the freshness rules, the window the folder keeps and the run's
    ``ingested_at`` are all measured from it.
    """
    rules = rules or Rules()
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC), not a naive datetime")
    manifest = read_manifest(store, hotkey)
    listed_at = datetime.now(UTC)  # the wall clock, as the store dates uploads; ``now`` may be simulated
    uploads = list_hotkey_uploads(store, hotkey)
    new = [f for f in uploads if not manifest.has_read(f)]
    _remove_uncommitted(store, hotkey, manifest)
    if not new:
        return IngestReport(hotkey, None, manifest, [])

    oldest = now - rules.freshness
    existing = read_table(store, manifest.listings_key)
    result = curate_hotkey(store, hotkey, new, existing, rules, now, seen=manifest.digests())
    kept, expired = _split_quarantine(read_table(store, manifest.quarantine_key), manifest, oldest)
    if expired is not None and expired.num_rows and manifest.quarantine_key:
        # Named after the committed file it came from: a retry after a crash rewrites the same audit file.
        _put_table(store, audit_prefix(hotkey) + manifest.quarantine_key.rsplit("/", 1)[-1], expired)
    quarantine = pa.concat_tables([kept, result.quarantine])

    stamp = f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    listings_key = curated_prefix(hotkey) + f"listings-{stamp}.parquet"
    quarantine_key = curated_prefix(hotkey) + f"quarantine-{stamp}.parquet"
    _put_table(store, listings_key, result.listings)
    _put_table(store, quarantine_key, quarantine)

    rows_in = Counter[str]()
    for report in result.files:
        if report.job_id is not None and report.rows_in:
            rows_in[report.job_id] += report.rows_in
    run = IngestRun(now, dict(sorted(rows_in.items())), result.digests)
    # Once this commits, every upload listed above has been read: the older ones need no entry.
    settled = listed_at - SETTLE_MARGIN
    if manifest.settled_before is not None:  # never back: this machine's clock may have been set back
        settled = max(settled, manifest.settled_before)
    committed = HotkeyManifest(
        hotkey=hotkey,
        processed={f.key: f.etag for f in uploads if f.mtime >= settled},
        settled_before=settled,
        listings_key=listings_key,
        quarantine_key=quarantine_key,
        updated_at=datetime.now(UTC).isoformat(),
        runs=[r for r in manifest.runs or [] if r.at >= oldest] + [run],
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


def _split_quarantine(
    table: pa.Table | None, manifest: HotkeyManifest, oldest: datetime
) -> tuple[pa.Table, pa.Table | None]:
    """The committed quarantine as (entries of runs since ``oldest``, older entries).

    Entries of a file written before ``ingested_at`` existed are dated by the
    manifest's last commit, the latest their run can have been.
    """
    if table is None:
        return QUARANTINE_SCHEMA.empty_table(), None
    if "ingested_at" not in table.column_names:
        table = table.append_column("ingested_at", pa.nulls(table.num_rows, TIMESTAMP))
    committed_at = datetime.fromisoformat(manifest.updated_at) if manifest.updated_at else oldest
    stamps = pc.fill_null(table.column("ingested_at"), pa.scalar(committed_at, TIMESTAMP))
    table = table.set_column(table.schema.get_field_index("ingested_at"), "ingested_at", stamps)
    table = table.select(QUARANTINE_SCHEMA.names).cast(QUARANTINE_SCHEMA)
    current = pc.greater_equal(stamps, pa.scalar(oldest, TIMESTAMP))
    return table.filter(current), table.filter(pc.invert(current))


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
    cutoff = datetime.now(UTC) - UNCOMMITTED_GRACE
    stale = [o.key for o in store.list(curated_prefix(hotkey)) if o.key not in keep and o.mtime < cutoff]
    if stale:
        store.delete_many(stale)
