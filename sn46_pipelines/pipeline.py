"""One full pass of the pipeline on a persistent Dagster instance (the checkout's local one by default).

``sn46 pipeline run`` and ``sn46 demo`` use this: tick the upload sensor,
run every partition it asks for, tick again until nothing is left (the
sensor caps runs per tick), then materialize every downstream asset. The runs
land in the same instance ``dagster dev`` shows.

By default each run executes in this process, one after another: quick, and
what the local sqlite instance is made for. With ``parallel`` above 1 several
hotkeys are ingested at once and every run uses Dagster's multiprocess
executor (a process per step), the way a production deployment runs them; the
instance then takes many writers at once, which is what Postgres
(``deploy/dagster.prod.yaml``) is for.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # dagster loads only when a pass runs, so `sn46 --help` stays fast
    import dagster as dg
    from dagster._core.instance.ref import InstanceRef

#: The sensor's cursor between passes, in the instance's key-value store.
CURSOR_KEY = "sn46/pipeline/miner_upload_sensor/cursor"
#: A pass stops ticking after this many ticks even if the sensor keeps finding work.
MAX_TICKS = 100
#: Runs started from the command line log warnings and errors only; the UI keeps everything.
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
#: Run config choosing the multiprocess side of Dagster's default executor (one process per step).
#: Steps fork from a server that imported the project once, instead of each importing it anew.
MULTIPROCESS = {"execution": {"config": {"multiprocess": {"start_method": {"forkserver": {}}}}}}
#: The run tag Dagster reads a run's partition from (``execute_job`` takes no partition argument).
PARTITION_TAG = "dagster/partition"
#: Where the project's Definitions live: the code location's module and attribute (``workspace.yaml``).
#: Step processes of the multiprocess executor load the job from here, as a code server would.
DEFINITIONS = ("sn46_pipelines.definitions", "defs")


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


def run_pipeline(instance: dg.DagsterInstance | None = None, *, parallel: int = 1) -> PipelineSummary:
    """Tick, ingest every hotkey with new uploads, then build everything downstream.

    ``parallel``: hotkey partitions ingested at once. Above 1, every run of the
    pass uses the multiprocess executor (see the module's docstring).
    """
    import dagster as dg

    from .definitions import defs

    if parallel < 1:
        raise ValueError(f"parallel: at least 1 hotkey at a time, got {parallel}")
    if instance is None:
        configure_dagster_home()
        instance = dg.DagsterInstance.get()
    if parallel > 1 and instance.is_ephemeral:
        raise ValueError(
            "parallel runs need a persistent Dagster instance (DAGSTER_HOME), not an ephemeral one"
        )
    if parallel > 1:
        _stop_forkserver()  # one started earlier in this process holds the environment of then
    try:
        return _pass(defs, instance, parallel)
    finally:
        if parallel > 1:
            _stop_forkserver()


def _pass(defs: dg.Definitions, instance: dg.DagsterInstance, parallel: int) -> PipelineSummary:
    """Tick until no new uploads are left, ingest each hotkey found, then build everything downstream."""
    import dagster as dg

    from .sensors.uploads import NO_NEW_UPLOADS

    summary = PipelineSummary()
    sensor = defs.resolve_sensor_def("miner_upload_sensor")
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
        _ingest(result.run_requests, instance, summary, parallel)
        if result.cursor is not None:
            instance.run_storage.set_cursor_values({CURSOR_KEY: result.cursor})
    _materialize_downstream(defs, instance, summary, parallel)
    return summary


@dataclass(frozen=True)
class _RunOutcome:
    run_id: str
    success: bool
    materializations: dict[str, dict[str, Any]]


def _ingest(
    requests: Sequence[dg.RunRequest], instance: dg.DagsterInstance, summary: PipelineSummary, parallel: int
) -> None:
    """Run one ``ingest_job`` run per request, ``parallel`` at a time; record them in request order."""
    if parallel == 1:
        outcomes = [
            _execute("ingest_job", instance, multiprocess=False, partition_key=r.partition_key, tags=r.tags)
            for r in requests
        ]
    else:
        # One process per concurrent run: Dagster's execution reconfigures logging and is not
        # thread-safe (two runs in threads of one process deadlock on the logging locks).
        pool = ProcessPoolExecutor(max_workers=parallel, mp_context=_forkserver(DEFINITIONS[0]))
        try:
            ref = instance.get_ref()
            futures = [pool.submit(_ingest_in_worker, ref, r.partition_key, dict(r.tags)) for r in requests]
            outcomes = [future.result() for future in futures]
        finally:  # on Ctrl-C, start no more runs; those running finish
            pool.shutdown(cancel_futures=True)
    for request, outcome in zip(requests, outcomes):
        hotkey = request.partition_key
        summary.runs.append({"run_id": outcome.run_id, "hotkey": hotkey, "success": outcome.success})
        if not outcome.success:
            summary.failed.append(f"ingest {hotkey}: run {outcome.run_id} failed")
        for metadata in outcome.materializations.values():
            summary.hotkeys[hotkey] = metadata


def _forkserver(preload: str) -> multiprocessing.context.BaseContext:
    """Processes forked from a server that imported ``preload`` once (clean: the server starts no threads)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([preload])
    return context


def _stop_forkserver() -> None:
    """Stop this process's fork server, if one runs, so the next forks from the environment as it is then.

    A fork server keeps the environment it started with, and every run and step
    process of a pass forks from it: without this, a second pass in the same
    process (a script, a test) would miss ``SN46_*`` or ``AWS_*`` variables set
    since, and read or write the wrong stores. Python has no public call for
    it; ``ForkServer._stop`` is what its own test suite uses.
    """
    from multiprocessing import forkserver

    forkserver._forkserver._stop()


def _ingest_in_worker(instance_ref: InstanceRef, partition_key: str, tags: dict[str, str]) -> _RunOutcome:
    """One ingest run on the multiprocess executor, in a pool process with its own handle on the instance."""
    import dagster as dg

    with dg.DagsterInstance.from_ref(instance_ref) as instance:
        return _execute("ingest_job", instance, multiprocess=True, partition_key=partition_key, tags=tags)


def _materialize_downstream(
    defs: dg.Definitions, instance: dg.DagsterInstance, summary: PipelineSummary, parallel: int
) -> None:
    """Materialize every unpartitioned asset (they all sit downstream of the ingest)."""
    graph = defs.resolve_asset_graph()
    keys = [k for k in graph.materializable_asset_keys if not graph.get(k).is_partitioned]
    if not keys:
        return
    every_asset = defs.resolve_implicit_global_asset_job_def().name
    outcome = _execute(every_asset, instance, multiprocess=parallel > 1, asset_selection=keys)
    summary.downstream.update(outcome.materializations)
    if not outcome.success:
        summary.failed.append(f"downstream assets: run {outcome.run_id} failed")


def _execute(
    job_name: str,
    instance: dg.DagsterInstance,
    *,
    multiprocess: bool,
    partition_key: str | None = None,
    tags: Mapping[str, str] | None = None,
    asset_selection: Sequence[dg.AssetKey] | None = None,
) -> _RunOutcome:
    """One run of the project's job ``job_name``: all in this process, or a process per step."""
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from .definitions import defs

    if not multiprocess:
        result = defs.resolve_job_def(job_name).execute_in_process(
            instance=instance,
            run_config=QUIET,
            partition_key=partition_key,
            tags=tags,
            asset_selection=asset_selection,
            raise_on_error=False,
        )
        return _RunOutcome(result.run_id, result.success, _materializations(result))
    if partition_key is not None:
        tags = {**(tags or {}), PARTITION_TAG: partition_key}
    with dg.execute_job(
        ReconstructableRepository.for_module(*DEFINITIONS).get_reconstructable_job(job_name),
        instance,
        run_config={**QUIET, **MULTIPROCESS},
        tags=tags,
        asset_selection=asset_selection,
    ) as result:
        return _RunOutcome(result.run_id, result.success, _materializations(result))


def _materializations(result: dg.ExecuteInProcessResult | dg.JobExecutionResult) -> dict[str, dict[str, Any]]:
    """Each materialized asset's metadata, by asset key."""
    return {
        event.asset_key.to_user_string(): _plain(event.materialization.metadata)
        for event in result.get_asset_materialization_events()
    }


def _plain(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata values as plain numbers and strings (for JSON and the printed summary)."""
    values = {k: getattr(v, "value", v) for k, v in metadata.items()}
    return {k: v for k, v in values.items() if isinstance(v, (int, float, str, bool)) or v is None}
