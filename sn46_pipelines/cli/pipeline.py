"""``sn46 pipeline``: run the whole pipeline once, or open the Dagster UI on it."""

from __future__ import annotations

import argparse
import json
import sys


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
    ui = commands.add_parser("ui", help="start `dagster dev` on this project (Ctrl-C stops it)")
    ui.add_argument("--port", type=int, default=3000)
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
    import signal
    import subprocess

    from ..config import SOURCE_ROOT
    from ..pipeline import configure_dagster_home, environment_for

    env = {**environment_for(args.env), "DAGSTER_HOME": str(configure_dagster_home())}
    workspace = SOURCE_ROOT / "workspace.yaml"
    command = [sys.executable, "-m", "dagster", "dev", "-w", str(workspace), "-p", str(args.port)]
    # Ctrl-C reaches dagster dev too (same process group). A SIGTERM (`kill`, a
    # supervisor) is sent to this process alone: pass it on. Either way, wait until
    # dagster dev has stopped its daemon, webserver and code server, so none outlives the command.
    with subprocess.Popen(command, cwd=SOURCE_ROOT, env=env) as dev:
        previous = signal.signal(signal.SIGTERM, lambda *_: dev.send_signal(signal.SIGTERM))
        try:
            return dev.wait()
        except KeyboardInterrupt:
            return dev.wait()
        finally:
            signal.signal(signal.SIGTERM, previous)
