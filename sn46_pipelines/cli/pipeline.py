"""``sn46 pipeline``: run the whole pipeline once, or open the Dagster UI on it."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pipeline",
        help="run the pipeline once, or open the Dagster UI",
        description="Drive the Dagster pipeline on the persistent local instance (DAGSTER_HOME).",
    )
    parser.set_defaults(group_parser=parser)
    commands = parser.add_subparsers(dest="pipeline_command", metavar="COMMAND")
    run = commands.add_parser(
        "run",
        help="run the Dagster daemon until every new upload is ingested and everything after it is built",
        description="Start dagster-daemon on the instance, let the upload sensor and the automation sensors "
        "request runs exactly as a deployment's daemon would, and stop once nothing is left to do.",
    )
    run.add_argument("--json", action="store_true", help="print the summary as one JSON document")
    run.add_argument(
        "--timeout",
        type=_positive_int,
        default=1800,
        metavar="SECONDS",
        help="give up after this long (default 1800), stopping the daemon and reporting what ran",
    )
    run.set_defaults(handler=_run)
    ui = commands.add_parser(
        "ui",
        help="start `dagster dev` on this project (Ctrl-C or SIGTERM stops it)",
        description="Start `dagster dev` (webserver, daemon, code server) on the local instance. Ctrl-C or "
        "a SIGTERM stops all of it; whatever has not stopped after --stop-timeout seconds is killed.",
    )
    ui.add_argument("--port", type=int, default=3000)
    ui.add_argument(
        "--stop-timeout",
        type=_positive_int,
        default=60,
        metavar="SECONDS",
        help="after Ctrl-C or SIGTERM, kill what is still running after this long (default 60)",
    )
    ui.set_defaults(handler=_ui)


def _run(args: argparse.Namespace) -> int:
    return run_pass(timeout=args.timeout, as_json=args.json, env=args.env)


def run_pass(*, timeout: float, as_json: bool, before: dict | None = None, env: str | None = None) -> int:
    """One daemon-driven pass of environment ``env`` (default: ``SN46_ENV``, else local) with a
    progress line on stderr; print its summary; 0 when all went well."""
    from ..pipeline import PipelineError, run_pipeline

    try:
        summary = run_pipeline(timeout=timeout, progress=_progress, env=env)
    except PipelineError as exc:
        print(f"\nsn46 pipeline: {exc}", file=sys.stderr)
        return 1
    print(file=sys.stderr)
    if as_json and before is not None:
        print(json.dumps({**before, "pipeline": summary.to_dict()}, indent=1, default=str))
    else:
        print_summary(summary, as_json=as_json)
    return 0 if summary.ok else 1


def _progress(line: str) -> None:
    print(f"\r\033[K{line}", end="", file=sys.stderr, flush=True)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"at least 1, got {value}")
    return value


def print_summary(summary, *, as_json: bool) -> None:
    """Print a pass's summary: one JSON document, or a table a person reads."""
    if as_json:
        print(json.dumps(summary.to_dict(), indent=2, default=str))
        return
    ingests = sum(1 for run in summary.runs if run["hotkey"])
    print(f"{len(summary.runs)} runs ({ingests} ingests) in {summary.seconds:.0f} s")
    for hotkey, stats in sorted(summary.hotkeys.items()):
        rejected = {
            k.removeprefix("rejected_"): v for k, v in stats.items() if k.startswith("rejected_") and v
        }
        print(
            f"  {hotkey}  files {stats.get('files_processed', 0):>3}  "
            f"accepted {stats.get('rows_accepted', 0):>6}  rejected {rejected or '-'}"
        )
    for asset, metadata in summary.downstream.items():
        shown = ", ".join(f"{k}={_short(v)}" for k, v in list(metadata.items())[:8])
        print(f"  {asset}: {shown}")
    for failure in summary.failed:
        print(f"FAILED: {failure}", file=sys.stderr)


def _short(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)[:60]


def _ui(args: argparse.Namespace) -> int:
    from ..config import SOURCE_ROOT
    from ..pipeline import configure_dagster_home, environment_for

    home = configure_dagster_home()
    env = {**environment_for(args.env), "DAGSTER_HOME": str(home)}
    workspace = SOURCE_ROOT / "workspace.yaml"
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-p", str(args.port)]
    # dagster dev gets a process group of its own, shared by everything it starts (daemon,
    # webserver, code server, run workers), so a stop reaches all of them and nothing outlives it.
    _interruptible_children()
    with subprocess.Popen(command, cwd=SOURCE_ROOT, env=env, start_new_session=True) as dev:
        return serve_until_stopped(dev, args.stop_timeout, home)


def _interruptible_children() -> None:
    """Have the processes this one starts from now on stop on SIGINT, as on Ctrl-C.

    A shell starts a command it runs in the background (``&``, ``nohup``, many
    scripts and supervisors) with SIGINT ignored, and an ignored signal stays
    ignored across ``exec``: dagster dev would then never stop on the SIGINT
    sent to its group, and be killed after the grace period instead. A signal
    this process handles is reset to its default in a child, so handling
    SIGINT here, as Python does by default, is enough. (``dagster-daemon``
    installs its own handler: ``sn46 pipeline run`` needs none of this.)
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)


class _StopRequested(Exception):
    """A SIGTERM arrived (``kill``, a supervisor): stop as Ctrl-C does."""


def serve_until_stopped(dev: subprocess.Popen[bytes], grace: float, home: Path) -> int:
    """Wait for ``dev``; on Ctrl-C or SIGTERM stop its whole group, within ``grace`` seconds.

    The stop is Ctrl-C's in a terminal: SIGINT to every process of the group,
    so a run worker interrupts its run and records it as failed. A process still
    alive ``grace`` seconds later (a run or a sensor blocked on a store that
    stopped answering, which the S3 client retries for minutes) is killed, and
    the runs it left in flight are marked failed, so none holds a concurrency
    slot when the UI starts again. A second Ctrl-C or SIGTERM kills at once.
    """

    def stop_requested(*_) -> None:
        raise _StopRequested

    previous = signal.signal(signal.SIGTERM, stop_requested)
    try:
        try:
            return dev.wait()
        except (KeyboardInterrupt, _StopRequested):
            pass
        _signal_group(dev.pid, signal.SIGINT)
        with contextlib.suppress(KeyboardInterrupt, _StopRequested, subprocess.TimeoutExpired):
            _wait_for_group(dev, grace)
        if not _group_alive(dev.pid):
            return dev.wait()
        _signal_group(dev.pid, signal.SIGKILL)
        dev.wait()
        failed = _fail_orphaned_runs(home)
        print(
            f"sn46 pipeline ui: dagster dev had not stopped {grace:g} s after the signal; killed it and "
            f"its processes, and marked the {len(failed)} run(s) they left in flight as failed"
            + (f" ({', '.join(failed)})" if failed else ""),
            file=sys.stderr,
        )
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signum)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


def _wait_for_group(dev: subprocess.Popen[bytes], grace: float) -> None:
    """Until ``dev`` and every process of its group have exited (dagster dev may go before a child)."""
    deadline = time.monotonic() + grace
    dev.wait(timeout=grace)
    while _group_alive(dev.pid):
        if time.monotonic() > deadline:
            raise subprocess.TimeoutExpired(dev.args, grace)
        time.sleep(0.2)


def _fail_orphaned_runs(home: Path) -> list[str]:
    """Mark the instance's runs that are still starting, started or cancelling as failed: their
    workers were just killed, and no run monitor on the local instance would ever notice."""
    import dagster as dg

    in_flight = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
    with dg.DagsterInstance.from_config(str(home)) as instance:
        runs = instance.get_runs(dg.RunsFilter(statuses=in_flight))
        for run in runs:
            instance.report_run_failed(run, "sn46 pipeline ui was stopped and killed this run's worker")
    return [run.run_id for run in runs]
