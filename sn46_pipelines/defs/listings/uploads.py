"""``miner_upload_sensor``: turns new uploads into per-hotkey ingest runs.

Listing mode (default) scans job folders with per-folder cursors; event mode
(an SQS queue of the bucket's notifications is configured) reads the queue,
deletes a tick's messages only on the next tick (their handles travel in the
cursor Dagster stores with the tick's run requests), and reconciles against
a listing every :data:`RECONCILE_INTERVAL`, so a lost notification is found too.
Either way one run is requested per hotkey with new files, keyed by those
files, so a repeated request is a no-op.

The sensor also keeps ``miner_hotkeys`` to the registered miners: a
partition whose hotkey the data store's metagraph snapshot no longer lists
(and that uploaded nothing new this tick) is retired, so the partitions do
not grow with every hotkey that ever registered. Its materializations and
files stay for audit; a hotkey that registers again is added back on its
next upload.
"""

import hashlib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import dagster as dg
from botocore.exceptions import BotoCoreError, ClientError

from ...config import AutomationSettings
from ...errors import SN46Error
from ...listings.discovery import ProcessedFiles, ScanCursor, scan_uploads
from ...listings.events import EventCursor, UploadEventQueue, unprocessed
from ...listings.ingest import HotkeyManifest, ManifestError, read_manifest
from ...metagraph import MetagraphSnapshotError, registered_hotkeys
from ...objectstore import ObjectInfo, ObjectStore, ObjectStoreError
from ...objectstore.s3 import S3ObjectStore
from ..automation import sensor_status
from ..resources import DataStoreResource
from .ingest import HOTKEY_PARTITIONS, ingest_job, miner_hotkeys

#: Runs requested per tick at most; the rest wait for the next tick, oldest first.
MAX_RUNS_PER_TICK = 64
#: Requests per tick the late-file rescan may spend.
RESCAN_BUDGET = 40
#: Notifications read per tick in event mode.
MAX_EVENTS_PER_TICK = 500
#: How often event mode also lists the upload area (one listing-mode scan, within its caps): the
#: backstop for a notification that never came or expired in the queue.
RECONCILE_INTERVAL = timedelta(minutes=15)
#: The skip reason of a healthy tick that found nothing; any other skip is a problem.
NO_NEW_UPLOADS = "no new uploads"


#: The sensor's name: its cursor and ticks are stored under it.
UPLOAD_SENSOR = "miner_upload_sensor"


def upload_sensor(settings: AutomationSettings) -> dg.SensorDefinition:
    """``miner_upload_sensor`` with the environment's tick interval and default state."""
    return dg.SensorDefinition(
        name=UPLOAD_SENSOR,
        evaluation_fn=upload_tick,
        job=ingest_job,
        minimum_interval_seconds=settings.upload_sensor_interval_seconds,
        default_status=sensor_status(settings),
        description="Finds new miner uploads, registers new hotkeys as partitions and requests "
        "one ingest run per hotkey with new files.",
    )


def upload_tick(context: dg.SensorEvaluationContext, data_store: DataStoreResource) -> dg.SensorResult:
    """One tick: event mode when the environment names an upload queue, else listing mode."""
    queue_url = data_store.events_queue_url()
    if queue_url:
        return _event_tick(context, queue_url, data_store)
    return _listing_tick(context, data_store)


def _listing_tick(context: dg.SensorEvaluationContext, data_store: DataStoreResource) -> dg.SensorResult:
    try:
        # Opening reads the object-store secret: an outage or a bad secret must skip the tick, not crash it.
        store = data_store.open()
        scan = scan_uploads(
            store,
            ScanCursor.from_json(context.cursor),
            _manifests(context, store),
            max_hotkeys=MAX_RUNS_PER_TICK,
            rescan_budget=RESCAN_BUDGET,
        )
    except ObjectStoreError as exc:
        # An outage (Secrets Manager's too) is reported on the tick and retried next time; the cursor stays.
        return dg.SensorResult(skip_reason=f"data store unavailable: {exc}")
    except SN46Error as exc:
        # A missing, forbidden or malformed secret (SecretError) or a bad environment: named, never a value.
        return dg.SensorResult(skip_reason=f"data store cannot be opened: {exc}")
    for folder in scan.invalid_folders:
        context.log.warning(f"skipped upload folder data/{folder}/: not hotkey=<ss58 address>")
    context.log.info(
        f"{len(scan.new_files)} hotkeys with new files ({scan.late_files} late), "
        f"{len(scan.deferred)} deferred, {scan.requests} store requests"
    )
    new = {hk: [(f.key, f.etag) for f in files] for hk, files in scan.new_files.items()}
    return _result(context, new, _registered(context, store), cursor=scan.cursor.to_json())


class _Unreadable:
    """Stands for a manifest that cannot be read: its hotkey's uploads wait, none is requested."""

    def has_read(self, upload: ObjectInfo) -> bool:
        return True


def _manifests(context: dg.SensorEvaluationContext, store: ObjectStore) -> ProcessedFiles:
    """Each hotkey's manifest for a scan; an unreadable one holds back only its own hotkey, with a warning.

    Its uploads stay in the store, and a rescan finds them once the manifest is repaired or deleted.
    """

    def manifest(hotkey: str) -> _Unreadable | HotkeyManifest:
        try:
            return read_manifest(store, hotkey)
        except ManifestError as exc:
            context.log.warning(f"hotkey {hotkey}: no run requested: {exc}")
            return _Unreadable()

    return manifest


def _registered(context: dg.SensorEvaluationContext, store: ObjectStore) -> frozenset[str] | None:
    """The registered hotkeys, or None (retire nothing this tick) without a readable snapshot."""
    try:
        return registered_hotkeys(store)
    except (MetagraphSnapshotError, ObjectStoreError) as exc:
        context.log.warning(f"no partition retired this tick: {exc}")
        return None


def _event_tick(
    context: dg.SensorEvaluationContext, queue_url: str, data_store: DataStoreResource
) -> dg.SensorResult:
    """Delete the messages the last recorded tick turned into runs, read new ones, reconcile when due.

    Every early return keeps the stored cursor (``cursor=None``), or writes one
    whose ``pending`` is empty once those messages are deleted: no message is
    deleted before the tick that requested its runs was recorded.
    """
    cursor = EventCursor.from_json(context.cursor)
    try:
        store = data_store.open()
    except (ObjectStoreError, SN46Error) as exc:
        return dg.SensorResult(skip_reason=f"data store unavailable: {exc}")
    bucket, prefix = (store.bucket, store.prefix) if isinstance(store, S3ObjectStore) else (None, "")
    queue = UploadEventQueue(queue_url, bucket=bucket, key_prefix=prefix)
    try:
        refused, deletes = queue.delete(cursor.pending)
    except (BotoCoreError, ClientError) as exc:  # an SQS outage or refusal skips the tick, never crashes it
        return dg.SensorResult(skip_reason=f"upload event queue unavailable: {type(exc).__name__}")
    if refused:
        context.log.info(f"{len(refused)} acknowledged messages were already back in the queue")
    cursor.pending = []
    try:
        events = queue.receive(MAX_EVENTS_PER_TICK)
    except (BotoCoreError, ClientError) as exc:  # as above; the deleted messages leave the cursor
        return dg.SensorResult(
            skip_reason=f"upload event queue unavailable: {type(exc).__name__}", cursor=cursor.to_json()
        )
    cursor.pending = events.receipts
    try:
        ingested = unprocessed(events, lambda hotkey: read_manifest(store, hotkey).processed)
    except (ObjectStoreError, ManifestError) as exc:  # each run compares with its manifest anyway
        context.log.warning(f"manifests unreadable, every notified file is requested: {exc}")
        ingested = 0
    new = {hk: list(files.items()) for hk, files in events.new_files.items()}
    now = datetime.now(UTC)
    reconciled = _reconcile(context, store, cursor, new, now)
    for hotkey in new:
        cursor.scan.requested[hotkey] = now.isoformat()
    context.log.info(
        f"{len(events.receipts)} notifications: {len(events.new_files)} hotkeys with new files, "
        f"{ingested} already ingested, {events.ignored} ignored, {events.malformed} malformed, "
        f"{events.requests + deletes} SQS requests; reconcile: {reconciled}"
    )
    return _result(context, new, _registered(context, store), cursor=cursor.to_json())


def _reconcile(
    context: dg.SensorEvaluationContext,
    store: ObjectStore,
    cursor: EventCursor,
    new: dict[str, list[tuple[str, str]]],
    now: datetime,
) -> str:
    """Every :data:`RECONCILE_INTERVAL`, add to ``new`` what one capped listing scan finds.

    Hotkeys requested within the interval are left out: any run of a hotkey
    ingests all of its unprocessed files, so theirs are taken care of.
    """
    last = datetime.fromisoformat(cursor.reconciled_at) if cursor.reconciled_at else None
    if last is not None and now - last < RECONCILE_INTERVAL:
        return "not due"
    since = now - RECONCILE_INTERVAL
    recent = {hk for hk, at in cursor.scan.requested.items() if datetime.fromisoformat(at) > since}
    try:
        scan = scan_uploads(
            store,
            cursor.scan,
            _manifests(context, store),
            max_hotkeys=MAX_RUNS_PER_TICK,
            rescan_budget=RESCAN_BUDGET,
            now=now,
        )
    except ObjectStoreError as exc:  # tried again next tick
        context.log.warning(f"reconcile skipped: data store unavailable: {exc}")
        return "failed"
    found = {hk: files for hk, files in scan.new_files.items() if hk not in recent}
    for hotkey, files in found.items():
        known = dict(new.get(hotkey, []))
        new[hotkey] = sorted({**known, **{f.key: f.etag for f in files}}.items())
    cursor.scan, cursor.reconciled_at = scan.cursor, now.isoformat()
    count = sum(len(f) for f in found.values())
    return f"{count} files of {len(found)} hotkeys, {scan.requests} store requests"


def _result(
    context: dg.SensorEvaluationContext,
    new: dict[str, list[tuple[str, str]]],
    registered: frozenset[str] | None,
    cursor: str | None = None,
) -> dg.SensorResult:
    known = set(context.instance.get_dynamic_partitions(HOTKEY_PARTITIONS))
    unseen = sorted(set(new) - known)
    # New files are ingested even from a hotkey that just left: nothing uploaded is lost.
    retired = [] if registered is None else sorted(known - registered - set(new))
    if retired:
        context.log.info(f"retiring {len(retired)} partitions the metagraph no longer lists: {retired[:5]}")
    changes: list[dg.AddDynamicPartitionsRequest | dg.DeleteDynamicPartitionsRequest] = []
    if unseen:
        changes.append(miner_hotkeys.build_add_request(unseen))
    if retired:
        changes.append(miner_hotkeys.build_delete_request(retired))
    run_requests = [
        dg.RunRequest(
            partition_key=hotkey,
            run_key=f"{hotkey}:{_digest(key + etag for key, etag in files)}",
            tags={"sn46/new_files": str(len(files))},
        )
        for hotkey, files in sorted(new.items())
    ]
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=changes,
        cursor=cursor,
        skip_reason=None if run_requests else NO_NEW_UPLOADS,
    )


def _digest(parts: Iterable[str]) -> str:
    h = hashlib.sha256()
    for part in sorted(parts):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]
