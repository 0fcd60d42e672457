"""One pass of the pipeline, decided by the Dagster daemon itself: ``sn46 pipeline run`` and ``sn46 demo``.

A pass starts ``dagster-daemon`` on the persistent instance (the checkout's
local one unless ``DAGSTER_HOME`` names another, such as the production
Postgres one), or uses the one already serving it, lets the real ``miner_upload_sensor`` and the automation
sensors tick and their runs execute, and stops the daemon once the work has
settled: no run is queued or in flight, and every sensor has completed a tick
after the last run ended without asking for more. So there is one code path
for what runs: a pass and a daemon left running (``sn46 pipeline ui``, or the
production deployment) read the same sensor cursors, use the same run keys
and tags, and never disagree about what was ingested.

Only public Dagster API is used: the sensors' stored state and ticks are read
through :class:`dagster.DagsterInstance`, the daemon is Dagster's own command.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .allocator import with_pipeline_allocator
from .errors import SN46Error

if TYPE_CHECKING:  # dagster loads only when a pass runs, so `sn46 --help` stays fast
    import dagster as dg

    from .config import Settings

#: A pass gives up (stopping the daemon, reporting what ran) after this many seconds by default.
DEFAULT_TIMEOUT = 1800.0
#: Seconds between two looks at the instance while the daemon works.
POLL_SECONDS = 1.0
#: The skip reason of a healthy upload-sensor tick that found nothing (``defs.listings.uploads``).
NO_NEW_UPLOADS = "no new uploads"
#: Run states that are over; anything else is still to happen.
FINISHED = frozenset({"SUCCESS", "FAILURE", "CANCELED"})
#: Where the daemon's output goes, in the instance folder: a pass prints its own summary.
DAEMON_LOG = "daemon.log"


class PipelineError(SN46Error):
    """A pass could not be carried out (the daemon died, the sensors never ticked, the time ran out)."""


def configure_dagster_home() -> Path:
    """Use ``DAGSTER_HOME`` if set, else ``$SN46_HOME/.dagster_home`` with the checkout's ``dagster.yaml``.

    The instance file is copied (when it changed) rather than referenced, so
    the folder is a complete ``DAGSTER_HOME`` that ``dagster dev`` and the
    daemon open alike.
    """
    from .config import SOURCE_ROOT, project_home

    if os.environ.get("DAGSTER_HOME"):
        return Path(os.environ["DAGSTER_HOME"])
    home = project_home() / ".dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    source, target = SOURCE_ROOT / "dagster.yaml", home / "dagster.yaml"
    if not target.exists() or target.read_bytes() != source.read_bytes():
        shutil.copyfile(source, target)
    return home


@contextmanager
def dagster_home() -> Iterator[Path]:
    """``DAGSTER_HOME`` set to :func:`configure_dagster_home`'s folder while the block runs."""
    previous = os.environ.get("DAGSTER_HOME")
    home = configure_dagster_home()
    os.environ["DAGSTER_HOME"] = str(home)
    try:
        yield home
    finally:
        if previous is None:
            os.environ.pop("DAGSTER_HOME", None)
        else:
            os.environ["DAGSTER_HOME"] = previous


@dataclass
class PipelineSummary:
    """What one pass did: its runs, per hotkey and per downstream asset, and what went wrong."""

    runs: list[dict[str, Any]] = field(default_factory=list)
    hotkeys: dict[str, dict[str, Any]] = field(default_factory=dict)
    downstream: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "seconds": round(self.seconds, 1),
            "runs": self.runs,
            "hotkeys": self.hotkeys,
            "downstream": self.downstream,
            "failed": self.failed,
        }


def environment_for(env: str | None) -> dict[str, str]:
    """This process's variables, with ``SN46_ENV`` set to ``env`` when one is given and Arrow's
    allocator chosen (:mod:`.allocator`): what a Dagster process started for environment ``env``
    (the daemon, ``dagster dev``) is handed, and its code servers and run workers inherit. This
    process's own variables stay as they are."""
    return with_pipeline_allocator({**os.environ, "SN46_ENV": env} if env else os.environ)


def run_pipeline(
    *, timeout: float = DEFAULT_TIMEOUT, progress: Any = None, env: str | None = None
) -> PipelineSummary:
    """Run the daemon on environment ``env`` (default: ``SN46_ENV``, else local) until the work it
    finds has settled; return what ran.

    ``progress``, if given, is called with one line whenever the pass's state
    changes (runs queued, running, done), for a command line to print.
    """
    import dagster as dg

    from .config import load_settings
    from .definitions import build_definitions

    started = time.time()
    settings = load_settings(env)
    sensors = [sensor.name for sensor in build_definitions(settings).sensors or []]
    with dagster_home(), dg.DagsterInstance.get() as instance:
        _require_running_sensors(instance, sensors, settings)
        # A deployment's daemon already serving this instance does the work; a second one must not.
        daemons: list[subprocess.Popen[bytes]] = []
        try:
            _wait_until_settled(instance, daemons, sensors, started, timeout, progress, environment_for(env))
        finally:
            for daemon in daemons:
                _stop(daemon)
            if daemons:  # so that the next pass does not take this daemon's last heartbeat for a live one
                instance.wipe_daemon_heartbeats()
        summary = _summarize(instance, started)
    summary.seconds = time.time() - started
    return summary


def _require_running_sensors(
    instance: dg.DagsterInstance, sensors: Sequence[str], settings: Settings
) -> None:
    """Refuse a pass when the environment ships the sensors stopped and nobody started them.

    A pass is the daemon doing its normal work; with the sensors stopped it
    would do nothing and wait for ever. Starting them is the operator's call
    (the UI, or ``dagster sensor start``), so the pass says so instead.
    """
    if settings.automation.sensors == "running":
        return
    running = {s.instigator_name for s in instance.all_instigator_state() if s.status.value == "RUNNING"}
    stopped = [name for name in sensors if name not in running]
    if stopped:
        raise PipelineError(
            f"the environment ships the sensors stopped (automation.sensors) and {', '.join(stopped)} "
            "were never started: start them in the UI or with `dagster sensor start`"
        )


#: A daemon whose newest heartbeat is younger than this is taken to be running (it beats every 30 s).
HEARTBEAT_SECONDS = 60.0


def _daemon_alive(instance: dg.DagsterInstance) -> bool:
    """Whether a ``dagster-daemon`` (a deployment's, or ``dagster dev``'s) is serving this instance now."""
    beats = instance.get_daemon_heartbeats().values()
    return any(time.time() - beat.timestamp < HEARTBEAT_SECONDS for beat in beats)


def _start_daemon(environ: dict[str, str]) -> subprocess.Popen[bytes]:
    """``dagster-daemon run`` on this project's workspace, from the checkout (as ``sn46 pipeline ui``),
    with the variables ``environ`` (:func:`environment_for`)."""
    from .config import SOURCE_ROOT

    command = [str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"]
    with open(Path(os.environ["DAGSTER_HOME"]) / DAEMON_LOG, "ab") as log:  # the child keeps its own copy
        return subprocess.Popen(
            command,
            cwd=SOURCE_ROOT,
            env={**environ, "DAGSTER_HOME": os.environ["DAGSTER_HOME"]},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def _stop(daemon: subprocess.Popen[bytes]) -> None:
    """Stop the daemon as Ctrl-C would (it finishes its current iteration), killing it if it hangs."""
    if daemon.poll() is None:
        os.killpg(daemon.pid, signal.SIGINT)
        try:
            daemon.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(daemon.pid, signal.SIGKILL)
            daemon.wait()
            print("sn46 pipeline: the daemon had not stopped 60 s after SIGINT; killed it", file=sys.stderr)


def _wait_until_settled(
    instance: dg.DagsterInstance,
    daemons: list[subprocess.Popen[bytes]],
    sensors: Sequence[str],
    started: float,
    timeout: float,
    progress: Any,
    environ: dict[str, str],
) -> None:
    """Poll until no run is pending and every sensor ticked, after the last run ended, asking for nothing.

    A daemon is started (into ``daemons``) unless one is heartbeating, and
    again if that one stops beating (it was killed) while the pass waits.
    """
    deadline, shown = started + timeout, ""
    while True:
        if not daemons and not _daemon_alive(instance):
            daemons.append(_start_daemon(environ))
        daemon = daemons[0] if daemons else None
        if daemon is not None and daemon.poll() is not None:
            log = Path(os.environ["DAGSTER_HOME"]) / DAEMON_LOG
            raise PipelineError(f"dagster-daemon exited with code {daemon.returncode}; see {log}")
        runs = _runs_since(instance, started)
        pending = [r for r in runs if r.dagster_run.status.value not in FINISHED]
        line = _state_line(runs, pending) + _training_line(instance, pending)
        if progress is not None and line != shown:
            progress(line)
            shown = line
        if not pending:
            last_end = max([started, *(r.end_time or r.create_timestamp.timestamp() for r in runs)])
            quiet = _sensors_quiet_since(instance, sensors, last_end)
            if quiet:
                return
        if time.time() > deadline:
            raise PipelineError(f"the pipeline had not settled after {timeout:.0f} s: {line}")
        time.sleep(POLL_SECONDS)


def _state_line(runs: Sequence[Any], pending: Sequence[Any]) -> str:
    by_status: dict[str, int] = {}
    for record in runs:
        status = record.dagster_run.status.value.lower()
        by_status[status] = by_status.get(status, 0) + 1
    counts = ", ".join(f"{n} {status}" for status, n in sorted(by_status.items())) or "no runs yet"
    return f"{len(runs)} runs ({counts}); {len(pending)} to go"


def _training_line(instance: dg.DagsterInstance, pending: Sequence[Any]) -> str:
    """``; training: epoch 12/40: loss ...`` while a pending run trains the price model, else empty.

    A run with no asset selection (a whole job) is read too: its log
    holds epoch lines only if it trains.
    """
    for record in pending:
        selection = record.dagster_run.asset_selection or ()
        trains = any(key.path == ["price_model"] for key in selection)
        if trains or not selection:
            from .defs.training.progress import training_progress  # only while runs are in flight

            epoch = training_progress(instance, record.dagster_run.run_id)
            if epoch or trains:
                return f"; training: {epoch}" if epoch else "; training started"
    return ""


def _sensors_quiet_since(instance: dg.DagsterInstance, sensors: Sequence[str], moment: float) -> bool:
    """Whether each sensor completed a tick that began after ``moment`` and requested no run.

    A tick that failed, or an upload-sensor tick skipped for another reason
    than "no new uploads" (the store or queue unreachable), also ends the
    wait: the daemon will keep retrying it, a pass reports it.
    """
    states = {s.instigator_name: s for s in instance.all_instigator_state() if s.instigator_name in sensors}
    for name in sensors:
        state = states.get(name)
        if state is None:
            return False
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, after=moment, limit=5)
        done = [t for t in ticks if t.status.value in ("SKIPPED", "FAILURE", "SUCCESS")]
        if not any(t.status.value != "SUCCESS" for t in done):
            return False
    return True


def _runs_since(instance: dg.DagsterInstance, started: float) -> list[Any]:
    import dagster as dg

    after = datetime.fromtimestamp(started, tz=UTC)
    return list(instance.get_run_records(filters=dg.RunsFilter(created_after=after), ascending=True))


def _summarize(instance: dg.DagsterInstance, started: float) -> PipelineSummary:
    """Runs of the pass in creation order, each one's materializations, and every failure with its cause."""
    summary = PipelineSummary()
    for record in _runs_since(instance, started):
        run = record.dagster_run
        hotkey = run.tags.get("dagster/partition")
        summary.runs.append(
            {"run_id": run.run_id, "job": run.job_name, "hotkey": hotkey, "status": run.status.value.lower()}
        )
        for asset, metadata in _materializations(instance, run.run_id):
            if asset == "miner_listings" and hotkey:
                summary.hotkeys[hotkey] = metadata
            else:
                summary.downstream[asset] = metadata
        if run.status.value != "SUCCESS":
            what = f"ingest {hotkey}" if hotkey else run.job_name
            summary.failed.append(
                f"{what}: run {run.run_id} {run.status.value.lower()}{_cause(instance, run.run_id)}"
            )
    summary.failed.extend(_sensor_problems(instance, started))
    return summary


def _materializations(instance: dg.DagsterInstance, run_id: str) -> Iterable[tuple[str, dict[str, Any]]]:
    import dagster as dg

    for record in instance.get_records_for_run(
        run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records:
        materialization = record.asset_materialization
        if materialization is not None:
            yield materialization.asset_key.to_user_string(), _plain(materialization.metadata)


def _cause(instance: dg.DagsterInstance, run_id: str) -> str:
    """``: <message>`` of the run's first step failure, or nothing."""
    import dagster as dg

    for record in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records:
        event = record.event_log_entry.dagster_event
        error = event.step_failure_data.error if event and event.step_failure_data else None
        while error is not None and error.cause is not None:  # the user's exception, not Dagster's wrapper
            error = error.cause
        if error is not None:
            return f": {error.message.strip().splitlines()[0]}"
    return ""


def _sensor_problems(instance: dg.DagsterInstance, started: float) -> list[str]:
    """Failed ticks, and upload-sensor skips other than "no new uploads", during the pass."""
    problems = []
    for state in instance.all_instigator_state():
        ticks = instance.get_ticks(state.instigator_origin_id, state.selector_id, after=started, limit=200)
        for tick in ticks:
            if tick.status.value == "FAILURE" and tick.error is not None:
                problems.append(
                    f"sensor {state.instigator_name}: {tick.error.message.strip().splitlines()[0]}"
                )
                break
            reason = tick.skip_reason or ""
            if (
                state.instigator_name == "miner_upload_sensor"
                and tick.status.value == "SKIPPED"
                and reason
                not in (
                    "",
                    NO_NEW_UPLOADS,
                )
            ):
                problems.append(f"sensor {state.instigator_name}: {reason}")
                break
    return problems


def _plain(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata values as plain numbers and strings (for JSON and the printed summary)."""
    values = {k: getattr(v, "value", v) for k, v in metadata.items()}
    return {k: v for k, v in values.items() if isinstance(v, (int, float, str, bool)) or v is None}
