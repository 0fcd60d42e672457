"""How big the Dagster instance grows with upload rounds, and what pruning the run history gives back.

On a fresh ``SN46_HOME`` (the local sqlite instance of ``sn46 pipeline ui``),
``--rounds`` demo upload rounds of ``--miners`` miners land one at a time, each
followed by ``sn46 pipeline run`` (the real daemon: the upload sensor's ingest
runs, the automation sensors' aggregates, views, training and pin runs). After
each round it reports the runs the instance holds and its size on disk. Then
``prune_run_history_job`` runs with every finished run counted as old (what
the nightly schedule does to runs older than ``automation.run_history_days``),
and one more round lands, to show the pipeline carries on from what was kept:
only that round's files are ingested and the views are rebuilt.

The baseline, measured in the same run: the instance after a pass with
nothing to do (its schema and the sensors' first ticks, no runs).

    .venv/bin/python benchmarks/run_history_bench.py [--miners 12] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

NOW = datetime(2026, 12, 3, 12, tzinfo=UTC)
INTERVAL = timedelta(hours=2)


def sn46(*args: str, env: dict[str, str]) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "sn46_pipelines.cli", *args], env=env, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise SystemExit(f"sn46 {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def mib(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 2**20


def parts(home: Path) -> tuple[float, float, float]:
    """MiB of the per-run files (event-log shards, compute logs), the run index, and the tick storage."""
    per_run = (
        mib(home / "storage")
        + sum(p.stat().st_size for p in (home / "history" / "runs").glob("*.db")) / 2**20
    )
    index = (home / "history" / "runs.db").stat().st_size / 2**20
    return per_run, index, mib(home / "schedules")


def pass_summary(env: dict[str, str]) -> dict:
    return json.loads(sn46("pipeline", "run", "--json", env=env))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--miners", type=int, default=12)
    parser.add_argument("--rounds", type=int, default=3, help="rounds before the prune (one more after it)")
    args = parser.parse_args()
    total = args.rounds + 1
    with tempfile.TemporaryDirectory(prefix="sn46-history-") as home:
        env = {**os.environ, "SN46_HOME": home, "SN46_ENV": "local"}
        env.pop("DAGSTER_HOME", None)
        dagster_home = Path(home) / ".dagster_home"
        rows = []

        def record(when: str, summary: dict | None) -> None:
            launched, ok = (len(summary["runs"]), summary["ok"]) if summary else (0, True)
            rows.append(
                (when, run_count(dagster_home), mib(dagster_home), *parts(dagster_home), launched, ok)
            )
            print(f"{when}: {rows[-1][1]} runs, {rows[-1][2]:.1f} MiB", flush=True)

        def land(index: int) -> dict:
            seed_args = ["--miners", str(args.miners), "--rounds", str(total), "--only-round", str(index)]
            sn46("demo", "seed", *seed_args, "--now", (NOW + INTERVAL * total).isoformat(), env=env)
            return pass_summary(env)

        data_store = sn46("config", "--json", env=env)
        Path(json.loads(data_store)["data_store"].removeprefix("file://")).mkdir(parents=True)
        pass_summary(env)  # an empty data store, nothing to do: the baseline
        baseline = mib(dagster_home)
        print(f"empty instance (baseline): {baseline:.1f} MiB", flush=True)
        for index in range(args.rounds):
            record(f"round {index + 1}", land(index))

        started = time.perf_counter()
        pruned = prune(dagster_home, env)
        prune_seconds = time.perf_counter() - started
        record("after the prune", None)

        summary = land(args.rounds)
        ingests = [run for run in summary["runs"] if run.get("job") == "ingest_job"]
        record(f"round {total} (after it)", summary)

    print()
    print(f"{args.miners} miners, one round every {INTERVAL} of demo time; baseline {baseline:.1f} MiB")
    print(
        "| when | runs held | instance MiB | per-run files MiB | run index MiB | ticks MiB | runs this pass "
        "| pass ok |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---|")
    for when, runs, size, per_run, index, ticks, launched, ok in rows:
        print(
            f"| {when} | {runs} | {size:.1f} | {per_run:.1f} | {index:.1f} | {ticks:.1f} | {launched} "
            f"| {'yes' if ok else 'NO'} |"
        )
    print(
        "per-run files: each run's event-log shard and compute logs (deleted with the run); run index: "
        "sqlite reuses the pages of deleted rows, so it stops growing rather than shrinking; ticks: "
        "bounded by the instance's retention"
    )
    print()
    print(
        f"prune: {pruned['runs_deleted']} runs deleted, {pruned['old_runs_kept']} kept (still read), "
        f"{prune_seconds:.1f} s; the round after it ingested {len(ingests)} miners, "
        f"views rebuilt: {'yes' if 'validator_views' in summary['downstream'] else 'NO'}"
    )


def run_count(dagster_home: Path) -> int:
    with sqlite3.connect(dagster_home / "history" / "runs.db") as db:
        return db.execute("select count(*) from runs").fetchone()[0]


def prune(dagster_home: Path, env: dict[str, str]) -> dict:
    """The real job, in a child process on the deployment's instance, every finished run counted as old."""
    code = (
        "import json, dagster as dg\n"
        "from sn46_pipelines.definitions import defs\n"
        "job = defs.resolve_job_def('prune_run_history_job')\n"
        "config = {'ops': {'prune_run_history': {'config': {'days': 1e-9}}}}\n"
        "with dg.DagsterInstance.get() as instance:\n"
        "    result = job.execute_in_process(instance=instance, run_config=config)\n"
        "[event] = [e for e in result.all_events if e.event_type_value == 'STEP_OUTPUT']\n"
        "metadata = event.event_specific_data.metadata\n"
        "print(json.dumps({k: v.value for k, v in metadata.items()}, default=str))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**env, "DAGSTER_HOME": str(dagster_home)},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    main()
