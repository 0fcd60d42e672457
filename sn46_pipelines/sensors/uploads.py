"""``miner_upload_sensor``: turns new uploads into per-hotkey ingest runs."""


import hashlib

import dagster as dg

from ..assets.ingest import miner_hotkeys
from ..jobs import ingest_job
from ..listings.discovery import ScanCursor, scan_uploads
from ..listings.ingest import processed_files
from ..objectstore import ObjectStoreError
from ..resources import DataStoreResource

#: Runs requested per tick at most; the rest wait for the next tick, oldest first.
MAX_RUNS_PER_TICK = 64
#: Requests per tick the late-file rescan may spend.
RESCAN_BUDGET = 40


@dg.sensor(
    job=ingest_job,
    minimum_interval_seconds=30,
    description="Finds new miner uploads, registers new hotkeys as partitions and requests "
    "one ingest run per hotkey with new files.",
)
def miner_upload_sensor(context: dg.SensorEvaluationContext, data_store: DataStoreResource) -> dg.SensorResult:
    store = data_store.open()
    try:
        scan = scan_uploads(
            store,
            ScanCursor.from_json(context.cursor),
            lambda hotkey: processed_files(store, hotkey),
            max_hotkeys=MAX_RUNS_PER_TICK,
            rescan_budget=RESCAN_BUDGET,
        )
    except ObjectStoreError as exc:
        # An outage is reported on the tick and retried next time; the cursor stays.
        return dg.SensorResult(skip_reason=f"data store unavailable: {exc}")
    for folder in scan.invalid_folders:
        context.log.warning(f"skipped upload folder data/{folder}/: not hotkey=<ss58 address>")

    known = set(context.instance.get_dynamic_partitions(miner_hotkeys.name))
    unseen = sorted(set(scan.new_files) - known)
    run_requests = [
        dg.RunRequest(
            partition_key=hotkey,
            run_key=f"{hotkey}:{_digest(f.key + f.etag for f in files)}",
            tags={"sn46/new_files": str(len(files))},
        )
        for hotkey, files in sorted(scan.new_files.items())
    ]
    context.log.info(
        f"{len(run_requests)} hotkeys with new files ({scan.late_files} late), "
        f"{len(scan.deferred)} deferred, {scan.requests} store requests"
    )
    return dg.SensorResult(
        run_requests=run_requests,
        dynamic_partitions_requests=[miner_hotkeys.build_add_request(unseen)] if unseen else [],
        cursor=scan.cursor.to_json(),
        skip_reason=None if run_requests else "no new uploads",
    )


def _digest(parts) -> str:
    h = hashlib.sha256()
    for part in sorted(parts):
        h.update(part.encode())
        h.update(b"\0")
    return h.hexdigest()[:16]
