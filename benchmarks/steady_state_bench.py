"""Steady state: miners upload the same homes again every round; does the cost stay flat?

Setup: a folder store, ``--miners`` miners, each scraping one zip whose market
holds ``rows / overlap`` homes (``--churn`` of them sold and replaced by new
ones each day). Every ``--interval-hours`` each miner uploads ``--rows``
listings: ``--overlap`` of them homes it uploaded the round before (scraped
again, new price and scrape time), the rest other homes of its zip; 2% of the
rows carry an impossible price, so the quarantine has something to keep. After
every round each miner is ingested (``ingest_hotkey``) as the deployment would.

Six months of rounds are more than a benchmark can run, and they are not
needed: the curated set keeps only the scoring window (30 days), so what an
aggregates run reads on day 180 depends only on the uploads of days 150-180.
``--skip FROM:TO`` leaves out the rounds of days FROM to TO (the miners are
offline, their markets keep turning over); the rounds after it rebuild the
window from nothing, as six continuous months would have left it.

Measured at the first round, the second (the first whose ingest has a current
set to merge into), the last round before the skip (the window full after
running continuously), the first round after it and the last one, each in its
own child process so its peak memory is its own: one miner's
ingest run, and one aggregates run over every miner (``compute_aggregates``,
DuckDB capped at ``--memory-limit``). One miner's ingest runs ``--fresh-runs``
times, each in a fresh process, and the median counts: one fresh process varies
too much to stand for a run. Every process starts with Arrow's allocator chosen
as the deployment's run workers get it (``sn46_pipelines.allocator``; set
``ARROW_DEFAULT_MEMORY_POOL`` to measure another). The baseline is the same
child doing nothing but the imports, measured in the same run. Also printed:
the bytes the curated area holds (what aggregates read) and the audit area
(what is kept).

    .venv/bin/python benchmarks/steady_state_bench.py       # 256 miners, 180 days, daily rounds
    .venv/bin/python benchmarks/steady_state_bench.py --miners 256 --days 7 --interval-hours 2 --skip 0:0
    .venv/bin/python benchmarks/steady_state_bench.py --miners 32 --days 60 --skip 35:50  # smaller
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sn46_pipelines.allocator import ARROW_POOL_VARIABLE, with_pipeline_allocator
from sn46_pipelines.listings.layout import manifest_key

START = datetime(2026, 12, 1, tzinfo=UTC)
IMPOSSIBLE_SHARE = 0.02


def main() -> None:
    if ARROW_POOL_VARIABLE not in os.environ:  # start as the deployment starts its run workers
        os.execve(sys.executable, [sys.executable, *sys.argv], with_pipeline_allocator(os.environ))
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--miners", type=int, default=256)
    parser.add_argument("--days", type=float, default=180.0, help="the timeline's length")
    parser.add_argument("--interval-hours", type=float, default=24.0)
    parser.add_argument("--skip", default="36:144", help="FROM:TO days with no uploads (0:0 for none)")
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--overlap", type=float, default=0.7)
    parser.add_argument("--churn", type=float, default=0.03, help="share of a market's homes sold per day")
    parser.add_argument("--memory-limit", default="2GB")
    parser.add_argument(
        "--fresh-runs", type=int, default=7, help="fresh-process ingest runs per measured round (median)"
    )
    parser.add_argument("--child", nargs=3, metavar=("WHAT", "STORE", "NOW"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, memory_limit=args.memory_limit)))
        return

    interval = timedelta(hours=args.interval_hours)
    rounds = timeline(args.days, interval, args.skip)
    measured = measured_rounds(rounds)
    churn = 1 - (1 - args.churn) ** (args.interval_hours / 24)  # per round
    with tempfile.TemporaryDirectory(prefix="sn46-steady-") as folder:
        root = Path(folder) / "store"
        market = Market(args.miners, args.rows, args.overlap, churn)
        baseline = measure("baseline", root, START)
        results = []
        started = time.perf_counter()
        previous = None
        for number, now in enumerate(rounds, start=1):
            if previous is not None:  # the markets turn over while the miners are away
                market.turn_over(round((now - previous) / interval) - 1)
            previous = now
            market.upload_round(root, now)
            ingest_now = now + timedelta(minutes=10)
            if number in measured:  # miner 0 in children of their own, then everyone else here
                ingest = measure_ingest(root, market.hotkeys[0], ingest_now, args.fresh_runs)
            others = market.hotkeys[1:] if number in measured else market.hotkeys
            seconds = ingest_all(root, others, ingest_now)
            if number in measured:
                aggregates = measure("aggregates", root, ingest_now)
                day = (now - START) / timedelta(days=1)
                ingest["warm_median"] = float(np.median(seconds))
                ingest["manifest_bytes"] = (root / manifest_key(market.hotkeys[0])).stat().st_size
                results.append(
                    (day, ingest, aggregates, folder_bytes(root / "curated"), folder_bytes(root / "audit"))
                )
                print(
                    f"day {day:g} (round {number} of {len(rounds)}) measured after "
                    f"{time.perf_counter() - started:,.0f} s",
                    file=sys.stderr,
                )
        print_table(args, len(rounds), baseline, results)


def timeline(days: float, interval: timedelta, skip: str) -> list[datetime]:
    """Every round's time: one per ``interval`` over ``days``, less the skipped days."""
    skip_from, skip_to = (float(part) for part in skip.split(":"))
    rounds = []
    now = START
    while now < START + timedelta(days=days):
        day = (now - START) / timedelta(days=1)
        if not skip_from <= day < skip_to or skip_from == skip_to:
            rounds.append(now)
        now += interval
    return rounds


def measured_rounds(rounds: list[datetime]) -> set[int]:
    """First, second and last round, and the rounds either side of the skip (1-based).

    The second is the first whose ingest merges into a current set: the first round has none.
    """
    gaps = [n for n in range(1, len(rounds)) if rounds[n] - rounds[n - 1] > rounds[1] - rounds[0]]
    return {1, min(2, len(rounds)), len(rounds), *gaps, *(n + 1 for n in gaps)}


class Market:
    """Each miner's zip: the homes on the market, and the ones it uploaded last round."""

    def __init__(self, miners: int, rows: int, overlap: float, churn: float) -> None:
        from sn46_pipelines.demo.identities import demo_neurons

        self.rng = np.random.default_rng(46)
        self.rows, self.overlap, self.churn = rows, overlap, churn
        self.hotkeys = [n.hotkey for n in demo_neurons(self.rng, miners, 0)]
        homes = int(rows / overlap)
        self.homes = [np.arange(i * 10**7, i * 10**7 + homes) for i in range(miners)]
        self.next_zpid = [i * 10**7 + homes for i in range(miners)]
        self.last: list[np.ndarray | None] = [None] * miners

    def upload_round(self, root: Path, now: datetime) -> None:
        from sn46_pipelines.demo.listings import synth_listings
        from sn46_pipelines.demo.places import PLACES
        from sn46_pipelines.listings.keys import upload_key

        self.turn_over(1)
        for i, hotkey in enumerate(self.hotkeys):
            homes = self.homes[i]
            zpids = self.pick(i, homes)
            place = PLACES[i % len(PLACES)]
            table = synth_listings(self.rng, place, zpids, newest=now, window=timedelta(hours=1))
            bad = self.rng.random(table.num_rows) < IMPOSSIBLE_SHARE
            table = table.set_column(
                table.schema.get_field_index("price"), "price", pc.if_else(pa.array(bad), 1.0, table["price"])
            )
            job = f"zillow_premium_zip_{place.zip_code}_sold"
            path = root / upload_key(hotkey, job, now, table.num_rows)
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path)

    def turn_over(self, rounds: int) -> None:
        """``rounds`` rounds' worth of sales: sold homes leave each market, new ones come."""
        sold_share = 1 - (1 - self.churn) ** rounds
        for i, homes in enumerate(self.homes):
            sold = self.rng.random(homes.size) < sold_share
            homes[sold] = np.arange(self.next_zpid[i], self.next_zpid[i] + int(sold.sum()))
            self.next_zpid[i] += int(sold.sum())

    def pick(self, i: int, homes: np.ndarray) -> np.ndarray:
        """``rows`` homes: ``overlap`` of them uploaded last round (if still on the market), the rest
        others."""
        last = self.last[i]
        if last is None:
            chosen = self.rng.choice(homes, self.rows, replace=False)
        else:
            again = np.intersect1d(last, homes)
            again = self.rng.choice(again, min(again.size, int(self.rows * self.overlap)), replace=False)
            others = np.setdiff1d(homes, again)
            chosen = np.concatenate([again, self.rng.choice(others, self.rows - again.size, replace=False)])
        self.last[i] = chosen
        return chosen


def ingest_all(root: Path, hotkeys: list[str], now: datetime) -> list[float]:
    """Ingest each hotkey in this (long-running, so warm) process; the seconds each took."""
    from sn46_pipelines.listings.ingest import ingest_hotkey
    from sn46_pipelines.objectstore import open_store

    store = open_store(f"file://{root}")
    seconds = []
    for hotkey in hotkeys:
        started = time.perf_counter()
        ingest_hotkey(store, hotkey, now=now)
        seconds.append(time.perf_counter() - started)
    return seconds


def measure_ingest(root: Path, hotkey: str, now: datetime, runs: int) -> dict[str, Any]:
    """One miner's ingest in ``runs`` fresh processes: the median, the range and the peak RSS.

    All but the last run work on a copy of the miner's folders (hard links: the
    uploads keep their dates, so the same ones are new); the last commits in
    ``root``. A single fresh process varies too much run to run to stand for one.
    """
    folders = [f"data/hotkey={hotkey}", f"curated/hotkey={hotkey}"]
    samples = []
    for _ in range(runs - 1):
        with tempfile.TemporaryDirectory(prefix="sn46-steady-copy-") as copy:
            for folder in folders:
                if (root / folder).exists():
                    shutil.copytree(root / folder, Path(copy) / folder, copy_function=os.link)
            samples.append(measure(f"ingest:{hotkey}", Path(copy), now))
    samples.append(measure(f"ingest:{hotkey}", root, now))
    seconds = [s["seconds"] for s in samples]
    return {
        **samples[-1],
        "seconds": float(np.median(seconds)),
        "fastest": min(seconds),
        "slowest": max(seconds),
        "peak_mib": max(s["peak_mib"] for s in samples),
    }


def measure(what: str, root: Path, now: datetime) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", what, str(root), now.isoformat()]
    return json.loads(subprocess.run(command, check=True, capture_output=True, text=True).stdout)


def child(what: str, root: str, now: str, *, memory_limit: str) -> dict[str, Any]:
    """One measured step, timed from after the imports; peak RSS of this process."""
    from sn46_pipelines.demo.identities import demo_neurons  # noqa: F401  (the imports the others pay)
    from sn46_pipelines.listings.aggregates import compute_aggregates
    from sn46_pipelines.listings.ingest import ingest_hotkey
    from sn46_pipelines.listings.sources import curated_sources
    from sn46_pipelines.objectstore import open_store

    moment = datetime.fromisoformat(now)
    started = time.perf_counter()
    rows = 0
    if what != "baseline":
        store = open_store(f"file://{root}")
        if what.startswith("ingest:"):
            rows = ingest_hotkey(store, what.removeprefix("ingest:"), now=moment).listings_rows
        else:
            aggregates = compute_aggregates(curated_sources(store), now=moment, memory_limit=memory_limit)
            rows = sum(aggregates["miner_scores"].column("curated_rows").to_pylist())
    seconds = time.perf_counter() - started
    return {
        "seconds": seconds,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows": rows,
        "allocator": pa.default_memory_pool().backend_name,
    }


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def print_table(args: argparse.Namespace, rounds: int, baseline: dict[str, float], results: list) -> None:
    print(
        f"\n{args.miners} miners, {rounds} rounds {args.interval_hours:g} h apart over {args.days:g} days "
        f"(days {args.skip} skipped), {args.rows} listings per miner per round, {args.overlap:.0%} overlap, "
        f"{args.churn:.0%} of homes sold per day; "
        f"idle child (imports only): {baseline['peak_mib']:,.0f} MiB peak; Arrow's allocator: "
        f"{baseline['allocator']}; fresh-process ingest: median of {args.fresh_runs} runs (fastest-slowest)\n"
    )
    print(
        "| day | ingest (1 miner, fresh process) | ingest peak | ingest (median miner, warm process) "
        "| manifest | aggregates | aggregates peak | curated rows | curated | audit |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for day, ingest, aggregates, curated, audit in results:
        print(
            f"| {day:g} | {ingest['seconds']:.3f} s ({ingest['fastest']:.3f}-{ingest['slowest']:.3f}) "
            f"| {ingest['peak_mib']:,.0f} MiB "
            f"| {ingest['warm_median']:.3f} s | {ingest['manifest_bytes'] / 1024:,.1f} KiB "
            f"| {aggregates['seconds']:.2f} s | {aggregates['peak_mib']:,.0f} MiB | {aggregates['rows']:,} "
            f"| {curated / 2**20:,.1f} MiB | {audit / 2**20:,.1f} MiB |"
        )


if __name__ == "__main__":
    main()
