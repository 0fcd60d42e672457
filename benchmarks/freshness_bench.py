"""From upload to refreshed views on the live local deployment, with nobody pressing a button.

Starts ``sn46 pipeline ui`` (``dagster dev``: webserver, daemon, sensors) on a
fresh ``SN46_HOME``, then lands rounds of demo uploads (16 miners, then 64,
two hours of demo time apart) in the local data store and waits until every
miner's new files are ingested and a ``validator_views`` run has started after
the last of them. For each round it reports, per miner, the time from the
round landing to the first views built after that miner's ingest (p50, p95,
max), the runs launched, the aggregates runs, and the CPU seconds the whole
deployment spent (its process tree, finished runs included).

    .venv/bin/python benchmarks/freshness_bench.py [--rounds 16,64] [--port 3123]

The baseline, measured in the same run: the same round's ingest and
aggregation done by hand with the libraries in one process (no Dagster),
which is the least any deployment can take.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psutil

#: A round that has not settled after this long is reported as such.
ROUND_LIMIT = 1800.0
START = datetime(2026, 12, 3, tzinfo=UTC)


@dataclass
class Round:
    miners: int
    p50: float
    p95: float
    worst: float
    runs: int
    aggregates_runs: int
    cpu_seconds: float
    baseline_seconds: float


def tree_cpu(root: psutil.Process) -> float:
    """CPU seconds of ``root`` and its live descendants, with the reaped children each one waited for."""
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system + times.children_user + times.children_system
    return total


def wait_for_ui(port: int, ui: subprocess.Popen[bytes]) -> None:
    """Until the webserver answers (the daemon starts beside it), or the process dies."""
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if ui.poll() is not None:
            raise SystemExit(f"sn46 pipeline ui exited with {ui.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(1)
    raise SystemExit("the UI did not answer within 300 s")


def wait_for_round(instance, hotkeys: list[str], landed: float) -> list[float]:
    """Per miner: seconds from ``landed`` to the first views whose run started after its ingest."""
    import dagster as dg

    deadline = time.monotonic() + ROUND_LIMIT
    while time.monotonic() < deadline:
        ingested = {}
        for hotkey in hotkeys:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey("miner_listings"), asset_partitions=[hotkey]),
                limit=1,
            ).records
            if records and records[0].timestamp > landed:
                ingested[hotkey] = records[0].timestamp
        views = instance.fetch_materializations(dg.AssetKey("validator_views"), limit=50).records
        starts = sorted(
            (instance.get_run_record_by_id(v.run_id).start_time or 0.0, v.timestamp)
            for v in views
            if v.timestamp > landed
        )
        if len(ingested) == len(hotkeys) and starts and starts[-1][0] > max(ingested.values()):
            return [
                next(built for start, built in starts if start > done) - landed for done in ingested.values()
            ]
        time.sleep(1)
    raise SystemExit(f"round of {len(hotkeys)} miners did not settle within {ROUND_LIMIT:.0f} s")


def baseline(store_url: str, miners: int, now: datetime) -> float:
    """The same round ingested and aggregated by hand, one process, no Dagster: the floor."""
    from sn46_pipelines.demo.seed import seed_demo
    from sn46_pipelines.listings.aggregates import aggregate_store, write_aggregates
    from sn46_pipelines.listings.ingest import ingest_hotkey
    from sn46_pipelines.objectstore import open_store

    store = open_store(store_url)
    report = seed_demo(store, miners=miners, validators=1, seed=1, now=now)
    started = time.perf_counter()
    for miner in report.miners:
        ingest_hotkey(store, miner.hotkey)
    write_aggregates(store, aggregate_store(store))
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", default="16,64", help="miners per round, comma-separated (default 16,64)")
    parser.add_argument("--port", type=int, default=3123)
    args = parser.parse_args()
    sizes = [int(n) for n in args.rounds.split(",")]

    home = Path(tempfile.mkdtemp(prefix="sn46-freshness-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SN46_", "DAGSTER_"))}
    env["SN46_HOME"] = str(home)
    with open(home / "ui.log", "wb") as log:  # the UI keeps its own copy of the descriptor
        ui = subprocess.Popen(
            [sys.executable, "-m", "sn46_pipelines.cli", "pipeline", "ui", "--port", str(args.port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    os.environ.update(SN46_HOME=str(home), DAGSTER_HOME=str(home / ".dagster_home"))
    import dagster as dg

    from sn46_pipelines.demo.seed import seed_demo
    from sn46_pipelines.objectstore import open_store

    rounds = []
    try:
        # Open the instance only once the UI answers: it creates the fresh sqlite tables first.
        wait_for_ui(args.port, ui)
        store = open_store(f"file://{home}/.sn46/local/data")
        root = psutil.Process(ui.pid)
        with dg.DagsterInstance.get() as instance:
            for index, miners in enumerate(sizes):
                now = START + timedelta(hours=2 * index)
                cpu_before = tree_cpu(root)
                report = seed_demo(store, miners=miners, validators=1, seed=index, now=now)
                landed = time.time()
                ages = sorted(wait_for_round(instance, [m.hotkey for m in report.miners], landed))
                cpu = tree_cpu(root) - cpu_before
                after = datetime.fromtimestamp(landed, tz=UTC)
                runs = list(instance.get_run_records(filters=dg.RunsFilter(created_after=after)))
                aggregates = {
                    r.run_id
                    for r in instance.fetch_materializations(
                        dg.AssetKey("listing_aggregates"), limit=50
                    ).records
                    if r.timestamp > landed
                }
                floor = baseline(f"file://{tempfile.mkdtemp(prefix='sn46-floor-')}", miners, now)
                rounds.append(
                    Round(
                        miners,
                        statistics.median(ages),
                        ages[int(0.95 * (len(ages) - 1))],
                        ages[-1],
                        len(runs),
                        len(aggregates),
                        cpu,
                        floor,
                    )
                )
    finally:
        os.killpg(ui.pid, signal.SIGINT)
        try:
            ui.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)

    print(
        f"{'miners':>6} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'runs':>5} {'aggr. runs':>10} "
        f"{'CPU s':>7} {'floor s':>8}"
    )
    for r in rounds:
        print(
            f"{r.miners:>6} {r.p50:>7.1f} {r.p95:>7.1f} {r.worst:>7.1f} {r.runs:>5} {r.aggregates_runs:>10} "
            f"{r.cpu_seconds:>7.1f} {r.baseline_seconds:>8.2f}"
        )
    print(
        "freshness: seconds from a round landing to the first validator_views built after each miner's "
        "ingest; floor: the round's ingest and aggregates by hand in one process (no Dagster)"
    )


if __name__ == "__main__":
    main()
