"""One full pass of the pipeline, in process, on the persistent local Dagster instance.

``sn46 pipeline run`` and ``sn46 demo`` use this: tick the upload sensor,
run every partition it asks for, tick again until nothing is left (the
sensor caps runs per tick), then materialize every downstream asset. The runs
land in the same instance ``dagster dev`` shows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The sensor's cursor between passes, in the instance's key-value store.
CURSOR_KEY = "sn46/pipeline/miner_upload_sensor/cursor"
#: A pass stops ticking after this many ticks even if the sensor keeps finding work.
MAX_TICKS = 100
#: Runs started from the command line log warnings and errors only; the UI keeps everything.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def configure_dagster_home() -> Path:
    """Point Dagster at the checkout's ``dagster.yaml`` and a git-ignored sqlite folder, unless set.

    The instance's files go under ``SN46_HOME`` (the checkout by default), next to the local stores.
    """
    from .config import SOURCE_ROOT, project_home

    os.environ.setdefault("DAGSTER_HOME", str(SOURCE_ROOT))
    os.environ.setdefault("SN46_DAGSTER_STORAGE", str(project_home() / ".dagster_home"))
    Path(os.environ["SN46_DAGSTER_STORAGE"]).mkdir(parents=True, exist_ok=True)
    return Path(os.environ["DAGSTER_HOME"])


@dataclass
class PipelineSummary:
    """What one pass did, per hotkey and per downstream asset."""

    ticks: int = 0
    runs: list[dict[str, Any]] = field(default_factory=list)
    hotkeys: dict[str, dict[str, Any]] = field(default_factory=dict)
    downstream: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "ticks": self.ticks,
            "runs": self.runs,
            "hotkeys": self.hotkeys,
            "downstream": self.downstream,
            "failed": self.failed,
        }


def run_pipeline(instance=None) -> PipelineSummary:
    """Tick, ingest every hotkey with new uploads, then build everything downstream."""
    import dagster as dg

    from .definitions import defs
    from .sensors.uploads import NO_NEW_UPLOADS

    if instance is None:
        configure_dagster_home()
        instance = dg.DagsterInstance.get()
    summary = PipelineSummary()
    sensor = defs.resolve_sensor_def("miner_upload_sensor")
    ingest = defs.resolve_job_def("ingest_job")
    for _ in range(MAX_TICKS):
        cursor = instance.run_storage.get_cursor_values({CURSOR_KEY}).get(CURSOR_KEY)
        context = dg.build_sensor_context(
            instance=instance, cursor=cursor, definitions=defs, resources=defs.resources
        )
        result = sensor(context)  # the sensor's own SensorResult, as the daemon receives it
        summary.ticks += 1
        for request in result.dynamic_partitions_requests or []:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        if not result.run_requests:
            skip = result.skip_reason.skip_message if result.skip_reason else NO_NEW_UPLOADS
            if skip != NO_NEW_UPLOADS:  # the store or the event queue could not be read:
                summary.failed.append(skip)  # nothing downstream could be built either
                return summary
            break
        for request in result.run_requests:
            _run_ingest(ingest, request, instance, summary)
        if result.cursor is not None:
            instance.run_storage.set_cursor_values({CURSOR_KEY: result.cursor})
    _materialize_downstream(defs, instance, summary)
    return summary


def _run_ingest(job, request, instance, summary: PipelineSummary) -> None:
    hotkey = request.partition_key
    run = job.execute_in_process(
        partition_key=hotkey, instance=instance, tags=dict(request.tags), run_config=QUIET, raise_on_error=False
    )
    summary.runs.append({"run_id": run.run_id, "hotkey": hotkey, "success": run.success})
    if not run.success:
        summary.failed.append(f"ingest {hotkey}: run {run.run_id} failed")
        return
    for event in run.get_asset_materialization_events():
        summary.hotkeys[hotkey] = _plain(event.materialization.metadata)


def _materialize_downstream(defs, instance, summary: PipelineSummary) -> None:
    """Materialize every unpartitioned asset (they all sit downstream of the ingest)."""
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.materializable_asset_keys if not graph.get(k).is_partitioned]
    if not keys:
        return
    job = defs.resolve_implicit_global_asset_job_def()
    result = job.execute_in_process(
        instance=instance, asset_selection=keys, run_config=QUIET, raise_on_error=False
    )
    for event in result.get_asset_materialization_events():
        summary.downstream[event.asset_key.to_user_string()] = _plain(event.materialization.metadata)
    if not result.success:
        summary.failed.append(f"downstream assets: run {result.run_id} failed")


def _plain(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata values as plain numbers and strings (for JSON and the printed summary)."""
    values = {k: getattr(v, "value", v) for k, v in metadata.items()}
    return {k: v for k, v in values.items() if isinstance(v, (int, float, str, bool)) or v is None}
